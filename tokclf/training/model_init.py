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

A checkpoint that already has a token-classification head with named labels (an NER model to
start from, the spec's few-shot advice) is mapped by label name (`load_for_labels`): reordered,
partly kept or replaced, and the case is logged in one line and recorded in training_params.json.

Unexpected keys that belong to no part of the token classifier (a pooler, a language-model or
next-sentence head of the pretraining task: `pooler.*`, `cls.*`, `lm_head.*`) are what every base
checkpoint carries and are not a warning; unexpected keys inside the encoder are.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class HeadInit:
    """What happened to the classifier head (recorded in training_params.json as `classifier_head`).

    case: "new" (the checkpoint had no head for named labels, or none shared with ours), "same"
    (identical labels, identical order), "reordered" (identical label set in another order: the
    rows were permuted), "overlap" (rows of the shared labels kept, the others initialised).
    """

    case: str
    kept: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "kept": list(self.kept), "new": list(self.new), "dropped": list(self.dropped)}


def checkpoint_labels(model_path: str) -> list[str] | None:
    """The label names of a checkpoint's token-classification head, or None when it has none: no
    `*ForTokenClassification` architecture, or transformers' unnamed LABEL_i defaults."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):
        return None
    if not any(str(a).endswith("ForTokenClassification") for a in getattr(config, "architectures", None) or ()):
        return None
    id2label = getattr(config, "id2label", None) or {}
    names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(id2label))]
    if not names or any(not n for n in names) or all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        return None
    return names


def load_token_classifier(model_path: str, *, id2label: dict[int, str], dtype: Any) -> Any:
    """The model of `load_for_labels` (see there)."""
    return load_for_labels(model_path, id2label=id2label, dtype=dtype)[0]


def load_for_labels(model_path: str, *, id2label: dict[int, str], dtype: Any) -> tuple[Any, HeadInit]:
    """`AutoModelForTokenClassification.from_pretrained` for fine-tuning on `id2label`, weights in
    `dtype`, and what happened to the head.

    A checkpoint that already has a token-classification head with named labels is mapped by label
    name, never by position: the same set in another order has its rows reordered; an overlapping
    set keeps the rows of the shared labels and initialises only the new ones; a disjoint set gets
    a new head (even when its size matches, where transformers would keep the old rows under new
    names). Without named labels on both sides a head of another size is replaced
    (ignore_mismatched_sizes). Logs one line about the head, or transformers' full LOAD REPORT
    when more than the head is new or off."""
    new_names = [id2label[i] for i in range(len(id2label))]
    old_names = checkpoint_labels(model_path)
    named = all(n != f"LABEL_{i}" for i, n in enumerate(new_names))
    if old_names is None or not named or len(set(old_names)) != len(old_names):
        return _load(model_path, id2label, dtype), HeadInit("new", new=tuple(new_names))
    shared = [n for n in new_names if n in old_names]
    # Load the checkpoint's own head unchanged, then map its rows onto our labels.
    model = _load(model_path, dict(enumerate(old_names)), dtype, quiet_head=True)
    if new_names == old_names:
        choice = HeadInit("same", kept=tuple(new_names))
    elif set(new_names) == set(old_names):
        choice = HeadInit("reordered", kept=tuple(new_names))
    elif shared:
        choice = HeadInit("overlap", kept=tuple(shared), new=tuple(n for n in new_names if n not in old_names),
                          dropped=tuple(n for n in old_names if n not in new_names))
    else:
        choice = HeadInit("new", new=tuple(new_names), dropped=tuple(old_names))
    if choice.case != "same" and not _remap_head(model, old_names, new_names):
        log.warning("classifier head: cannot map the checkpoint's head by label name (no single linear layer of "
                    "%d outputs outside the encoder): it is replaced", len(old_names))
        return _load(model_path, id2label, dtype), HeadInit("new", new=tuple(new_names), dropped=tuple(old_names))
    model.config.num_labels = len(new_names)
    model.config.id2label = dict(enumerate(new_names))
    model.config.label2id = {n: i for i, n in enumerate(new_names)}
    if hasattr(model, "num_labels"):
        model.num_labels = len(new_names)  # BERT-like heads reshape the loss with it
    messages = {
        "same": "classifier head: loaded from the checkpoint (%d labels)" % len(new_names),
        "reordered": "classifier head: loaded from the checkpoint, rows reordered to this data's label order "
                     "(%d labels)" % len(new_names),
        "overlap": "classifier head: %d of %d labels' rows kept from the checkpoint, %d new (%s)%s" % (
            len(choice.kept), len(new_names), len(choice.new), ", ".join(choice.new[:8]) or "-",
            f"; the checkpoint's {', '.join(choice.dropped[:8])} dropped" if choice.dropped else ""),
        "new": "classifier head: new (%d labels; none shared with the checkpoint's %d)" % (len(new_names), len(old_names)),
    }
    log.info(messages[choice.case])
    return model, choice


def _remap_head(model: Any, old_names: list[str], new_names: list[str]) -> bool:
    """Replace the head's output layer by one with a row per new label: a shared label's row (and
    bias) copied from the old layer, the others initialised as transformers initialises a head."""
    import torch

    prefix = model.base_model_prefix
    candidates = [(name, module) for name, module in model.named_modules()
                  if isinstance(module, torch.nn.Linear) and module.out_features == len(old_names)
                  and not (name == prefix or name.startswith(prefix + "."))]
    if len(candidates) != 1:
        return False
    name, old = candidates[0]
    layer = torch.nn.Linear(old.in_features, len(new_names), bias=old.bias is not None)
    layer.to(device=old.weight.device, dtype=old.weight.dtype)
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        layer.weight.normal_(mean=0.0, std=std)
        if layer.bias is not None:
            layer.bias.zero_()
        index = {n: i for i, n in enumerate(old_names)}
        for j, label in enumerate(new_names):
            if label in index:
                layer.weight[j] = old.weight[index[label]]
                if layer.bias is not None:
                    layer.bias[j] = old.bias[index[label]]
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, layer)
    return True


def _load(model_path: str, id2label: dict[int, str], dtype: Any, *, quiet_head: bool = False) -> Any:
    """from_pretrained with transformers' LOAD REPORT held back unless more than the head is off;
    logs the head line unless `quiet_head` (the caller says what it did with the head)."""
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
    if quiet_head:
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
