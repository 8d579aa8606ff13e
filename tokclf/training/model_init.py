"""Load the base checkpoint as a token classifier, and say in one line what happened to its head.

Fine-tuning a checkpoint on new labels always leaves the classifier head newly initialised
(missing from a base model, or of another size in a model tuned on other labels), and transformers
5 reports that with a LOAD REPORT table at warning level on every run. That table is noise when
only the head is new and a real warning when anything else is: encoder weights missing (a
checkpoint of another architecture or size) or unexpected inside the encoder. So the loading runs
with `output_loading_info=True` (transformers' documented way to get the missing, unexpected and
mismatched keys) while a logging filter on transformers' `modeling_utils` logger holds the report
back; the report is let through unchanged when something besides the head is off, and replaced by
one tokclf line ("classifier head: new (N labels)") when not.

Unexpected keys that belong to no part of the token classifier (a pooler, a language-model or
next-sentence head of the pretraining task: `pooler.*`, `cls.*`, `lm_head.*`) are what every base
checkpoint carries and are not a warning; unexpected keys inside the encoder are.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("tokclf")
# transformers logs the LOAD REPORT here (transformers.modeling_utils, through its own logging).
TRANSFORMERS_LOADING_LOGGER = "transformers.modeling_utils"


class _HoldLoadReport(logging.Filter):
    """Keeps the LOAD REPORT records transformers logs while the model loads (others pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def _held_load_report() -> Iterator[_HoldLoadReport]:
    logger = logging.getLogger(TRANSFORMERS_LOADING_LOGGER)
    hold = _HoldLoadReport()
    logger.addFilter(hold)
    try:
        yield hold
    finally:
        logger.removeFilter(hold)


def head_keys(model: Any) -> set[str]:
    """State-dict keys of the task head: every parameter outside the base model (`classifier.*` for
    BERT-like models, `score.*` for some decoders)."""
    prefix = f"{model.base_model_prefix}."
    return {k for k in model.state_dict() if not k.startswith(prefix)}


def _belongs_to_model(key: str, model: Any) -> bool:
    """Whether an unexpected checkpoint key names a part of this model (the encoder or the head),
    rather than a part the token classifier does not have (a pooler, a pretraining head)."""
    parts = key.split(".")
    if parts[0] == model.base_model_prefix:
        parts = parts[1:]
    roots = {name for name, _ in model.named_children()} | {name for name, _ in model.base_model.named_children()}
    roots.discard(model.base_model_prefix)
    return bool(parts) and parts[0] in roots


def loading_problems(model: Any, info: dict[str, Any]) -> list[str]:
    """What the loading info says beyond the expected new head: missing or mismatched keys outside
    the head, unexpected keys inside the model, loading errors. [] when only the head is new."""
    head = head_keys(model)
    mismatched = {k[0] for k in info.get("mismatched_keys") or ()}
    problems = [f"missing from the checkpoint: {k}" for k in sorted(set(info.get("missing_keys") or ()) - head)]
    problems += [f"size mismatch: {k}" for k in sorted(mismatched - head)]
    problems += [f"unexpected in the checkpoint: {k}" for k in sorted(info.get("unexpected_keys") or ())
                 if _belongs_to_model(k, model)]
    problems += [str(m) for m in info.get("error_msgs") or ()]
    return problems


def load_token_classifier(model_path: str, *, id2label: dict[int, str], dtype: Any) -> Any:
    """`AutoModelForTokenClassification.from_pretrained` for fine-tuning on `id2label`: a head of
    another size is replaced (ignore_mismatched_sizes), weights in `dtype`. Logs one line about the
    head, or transformers' full LOAD REPORT when more than the head is new or off."""
    from transformers import AutoModelForTokenClassification

    with _held_load_report() as hold:
        model, info = AutoModelForTokenClassification.from_pretrained(
            model_path, num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()},
            ignore_mismatched_sizes=True, dtype=dtype, output_loading_info=True,
        )
    problems = loading_problems(model, info)
    if problems:
        logger = logging.getLogger(TRANSFORMERS_LOADING_LOGGER)
        for record in hold.held:
            logger.handle(record)  # the table as transformers wrote it, through its own handlers
        if not hold.held:  # transformers' verbosity hid it: still say what is wrong
            log.warning("loading %s: %s", model_path, "; ".join(problems[:10]))
        return model
    head = head_keys(model)
    new = (set(info.get("missing_keys") or ()) | {k[0] for k in info.get("mismatched_keys") or ()}) & head
    if not new:
        log.info("classifier head: loaded from the checkpoint (%d labels)", len(id2label))
    elif info.get("mismatched_keys"):
        shapes = {k[0]: k[1] for k in info["mismatched_keys"]}
        before = next((shape[0] for key, shape in shapes.items() if key.endswith("weight")), None)
        log.info("classifier head: new (%d labels; the checkpoint's had %s)", len(id2label), before)
    else:
        log.info("classifier head: new (%d labels)", len(id2label))
    return model
