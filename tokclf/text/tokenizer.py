"""Load the model's tokenizer in the form token classification needs: fast, and safe for pre-split words.

Two things matter here:

- Only "fast" tokenizers (backed by the Rust `tokenizers` library) give `word_ids()`, which is how
  each subword piece is traced back to the word whose label it carries. A slow (pure Python or
  SentencePiece-only) tokenizer is refused with an `EnvironmentProblem` that says what to do.
- Our input is already split into words (`is_split_into_words=True`). Tokenizers whose
  pre-tokenizer glues the preceding space onto a word (byte-level BPE: RoBERTa, GPT-2, BART,
  Longformer...; SentencePiece Metaspace with `prepend_scheme="never"`) would then see every word
  as if it started a text with no space before it, which is not how the model saw words in
  pre-training ("Ġworld" vs "world"). transformers 4 raised for this; transformers 5 silently
  tokenizes it wrong. We look at the backend pre-tokenizer itself (not at the model's name) and
  switch on the per-word prefix space when it is off.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tokclf.core.errors import EnvironmentProblem

logger = logging.getLogger(__name__)


def load_tokenizer(name_or_path: str) -> Any:
    """Load a fast tokenizer for `name_or_path` (Hub id, local folder, packaged model).

    Returns a `transformers.PreTrainedTokenizerFast` whose pre-tokenizer adds the word-initial
    space for pre-split words when the tokenizer needs it (see `needs_prefix_space`).
    Raises `EnvironmentProblem` when the tokenizer cannot be loaded or is not a fast one.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from tokclf.core.resources import resolve_model_path

    path = resolve_model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(
            f"cannot load the tokenizer of model {name_or_path!r}: {exc}",
            fix="check the model name or path (a local folder needs tokenizer.json or the tokenizer's vocabulary "
            "files); for a Hub model make sure it can be downloaded or is in the local cache.", code="E1001",
        ) from None
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise EnvironmentProblem(
            f"the tokenizer of model {name_or_path!r} is a slow tokenizer ({type(tokenizer).__name__}); "
            "token classification needs a fast tokenizer to map subword pieces back to words",
            fix="use a model that ships a tokenizer.json, or install `sentencepiece` (and `tiktoken` for "
            "tiktoken models) so transformers can convert the tokenizer to a fast one, then save it with "
            "save_pretrained() next to the model.", code="E1002",
        )
    if needs_prefix_space(tokenizer):
        # Model-specific classes (RobertaTokenizer, GPT2Tokenizer...) rebuild their pre-tokenizer
        # from the argument; generic ones (TokenizersBackend loaded from tokenizer.json) ignore it,
        # so the backend is patched below when the reload did not take.
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
        except (OSError, ValueError, TypeError):
            pass
        if needs_prefix_space(tokenizer):
            _enable_prefix_space(tokenizer)
        tokenizer.add_prefix_space = True
        tokenizer.init_kwargs["add_prefix_space"] = True
        logger.info("tokenizer of %s: prefix space enabled for pre-split words", name_or_path)
    return tokenizer


def needs_prefix_space(tokenizer: Any) -> bool:
    """True when pre-split words would be tokenized without their word-initial space marker."""
    return _fixed_pre_tokenizer(_pre_tokenizer_json(tokenizer)) is not None


def _pre_tokenizer_json(tokenizer: Any) -> dict[str, Any] | None:
    return json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer")


def _fixed_pre_tokenizer(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pre-tokenizer config with prefix spaces switched on, or None when nothing needs fixing.

    Walks nested `Sequence`s, so GPT-4/Llama-3 style `Split(regex) + ByteLevel` chains are found.
    """
    if not isinstance(node, dict):
        return None
    kind = node.get("type")
    if kind == "ByteLevel" and not node.get("add_prefix_space", False):
        return {**node, "add_prefix_space": True}
    if kind == "Metaspace":
        # tokenizers >= 0.15 writes prepend_scheme; older files only add_prefix_space. "first" is
        # fine: with pre-split input every word is encoded as its own "first" piece.
        scheme = node.get("prepend_scheme")
        if scheme == "never" or (scheme is None and node.get("add_prefix_space") is False):
            fixed = {**node, "prepend_scheme": "always"}
            if "add_prefix_space" in fixed:
                fixed["add_prefix_space"] = True
            return fixed
        return None
    if kind == "Sequence":
        children = node.get("pretokenizers") or []
        fixed_children = [_fixed_pre_tokenizer(child) for child in children]
        if all(child is None for child in fixed_children):
            return None
        return {
            **node,
            "pretokenizers": [f if f is not None else c for f, c in zip(fixed_children, children)],
        }
    return None


def _enable_prefix_space(tokenizer: Any) -> None:
    """Swap the backend's pre-tokenizer for the fixed one (built from a patched JSON copy)."""
    from tokenizers import Tokenizer

    backend = tokenizer.backend_tokenizer
    full = json.loads(backend.to_str())
    full["pre_tokenizer"] = _fixed_pre_tokenizer(full.get("pre_tokenizer"))
    backend.pre_tokenizer = Tokenizer.from_str(json.dumps(full)).pre_tokenizer
