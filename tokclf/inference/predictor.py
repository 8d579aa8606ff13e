"""Predict tags and entities with a trained model (PyTorch folder or ONNX export).

    from tokclf.inference.predictor import predict
    records = predict("outputs/wnut16-minilm", ["Steve Jobs founded Apple in Cupertino ."])
    records[0].entities   # [{"type": "person", "text": "Steve Jobs", "start": 0, "end": 10, "score": 0.97, "words": [0, 2]}, ...]

Inputs: a string (one raw text), a `pathlib.Path` (a file, read by `read_inputs`), a list of
strings (raw texts), a list of word lists (pre-split), `PredictionInput`s (pre-split words with
gold tags), dicts with "text" or "tokens" (and "tags"), or a `datasets.Dataset` with tokens/tags
columns.

How a text becomes predictions:
- Raw text is split into words by `tokclf.text.words.split_words` (documented there), which keeps
  each word's character offsets into the original string. Pre-split words are used as given;
  their `text` is the words joined by single spaces and offsets refer to that string.
- Words are tokenized with `tokclf.text.features.tokenize_split`, so nothing is truncated: a text
  longer than the model window is covered by overlapping windows, and every word takes its
  prediction from the window where it sits farthest from an edge
  (`tokclf.text.features.merge_word_predictions` / `merge_word_probabilities`).
- The model runs over length-sorted batches filled up to a token budget (rows x padded length),
  without gradients, in bf16 where the CPU (AVX512-BF16/AMX) or GPU supports it.
- Each word's tag is the label at its first subword; its score is that label's softmax
  probability. Entities group words by the BIO/IOBES tags exactly as `tokclf.evaluation.metrics` scores
  them (seqeval's default, conlleval-compatible mode): B-X starts an entity, I-X continues an
  X entity, and **a stray I-X (after O, or after a tag of another type) starts a new X
  entity** rather than being dropped. An entity's score is the mean of its words' scores.
  Label sets that are not BIO (POS tags) give tags and no entities.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokclf.core.errors import DataError, TokclfError
from tokclf.text.words import join_words, split_words

log = logging.getLogger("tokclf")

# Rows x padded length per batch. On CPU throughput is flat from ~2k to ~8k tokens; larger
# budgets only cost memory (see docs/inference.md).
DEFAULT_TOKEN_BUDGET = 4096
DEFAULT_MAX_BATCH = 256
# Batch widths are padded up to a multiple of this: fewer distinct shapes, so oneDNN (bf16 on
# CPU) reuses its compiled kernels instead of building new ones for every width.
PAD_MULTIPLE = 8
# Texts tokenized and run together; bounds memory on large files and paces the progress bar.
CHUNK_TEXTS = 2048

ONNX_MANIFEST = "tokclf_export.json"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------


@dataclass
class PredictionInput:
    """One input: raw `text`, or pre-split `words` (with optional `gold` tags, one per word)."""

    text: str | None = None
    words: list[str] | None = None
    gold: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PredictionRecord:
    """What the model says about one input.

    text: the raw text (for pre-split input: the words joined by single spaces).
    words, spans: the words and their [start, end) character offsets into `text`.
    tags, scores: one predicted tag and its probability per word.
    entities: [{type, text, start, end, score, words: [first, last + 1]}], in text order;
        `text[start:end] == entity["text"]` and `words[first:last + 1]` are its words.
    gold: the input's own tags, when it had them (CoNLL tag column, JSONL/dataset tags).
    pretokenized: True when the words were given (not split from raw text).
    meta: passed through from the input (id, line, document).
    """

    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    tags: list[str]
    scores: list[float]
    entities: list[dict[str, Any]]
    gold: list[str] | None = None
    pretokenized: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one JSONL line): text, entities, words, tags, scores, and spans (raw text
        only), gold (when present) and the input's id/line/document (when present)."""
        out: dict[str, Any] = {}
        if "id" in self.meta:
            out["id"] = self.meta["id"]
        out["text"] = self.text
        out["entities"] = self.entities
        out["words"] = self.words
        if not self.pretokenized:
            out["spans"] = [list(s) for s in self.spans]
        out["tags"] = self.tags
        out["scores"] = [round(s, 4) for s in self.scores]
        if self.gold is not None:
            out["gold"] = self.gold
        for key in ("line", "document"):
            if key in self.meta:
                out[key] = self.meta[key]
        return out


# ------------------------------------------------------------------------------------------------
# Tags -> entities (seqeval default mode, as tokclf.evaluation.metrics scores)
# ------------------------------------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) the way seqeval reads a tag in its default mode; L-/U- (BILOU) as E-/S-."""
    prefix = tag[:1]
    if tag[1:2] == "-" and prefix in ("L", "U"):
        prefix = "E" if prefix == "L" else "S"
    return prefix, tag[1:].split("-", 1)[-1] or "_"


def tag_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one tag sequence as (type, first word, last word + 1).

    A line-for-line port of seqeval's `get_entities` (default, non-strict mode), which
    `tokclf.evaluation.metrics` scores with, so predicted entities are exactly the ones evaluation counts:
    B-X starts an entity; I-X continues an entity of type X and starts a new one otherwise (after
    O or another type: a stray I- is kept, not dropped); E-X ends one, S-X is a one-word entity.
    """
    out: list[tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(chunk)
        end = (
            prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != type_)
        )
        if end:
            out.append((prev_type, begin, i))
        start = (
            tag in ("B", "S")
            or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != type_)
        )
        if start:
            begin = i
        prev_tag, prev_type = tag, type_
    return out


def build_entities(
    tags: Sequence[str], scores: Sequence[float], text: str, spans: Sequence[tuple[int, int]]
) -> list[dict[str, Any]]:
    entities = []
    for type_, first, last in tag_spans(tags):
        start, end = spans[first][0], spans[last - 1][1]
        entities.append({
            "type": type_, "text": text[start:end], "start": start, "end": end,
            "score": round(float(np.mean(scores[first:last])), 4), "words": [first, last],
        })
    return entities


# ------------------------------------------------------------------------------------------------
# Model backends: batch of padded numpy inputs -> (label ids, probability of that label)
# ------------------------------------------------------------------------------------------------


class TorchBackend:
    name = "pytorch"

    def __init__(self, model: Any, mixed_precision: str | None) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.mixed_precision = mixed_precision
        self.input_names = ("input_ids", "attention_mask", "token_type_ids")

    @property
    def precision(self) -> str:
        return self.mixed_precision or "fp32"

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from tokclf.core.hardware import autocast_dtype

        dtype = autocast_dtype(self.mixed_precision)
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            logits = self.model(**inputs).logits
        conf, ids = logits.float().softmax(-1).max(-1)
        return ids.cpu().numpy(), conf.cpu().numpy()


class OnnxBackend:
    name = "onnx"

    def __init__(self, onnx_file: Path, precision: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise TokclfError(f"onnxruntime cannot load {onnx_file}: {exc}", where=str(onnx_file),
                              fix="re-export the model with `tokclf export --format onnx`.") from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.precision = precision

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        feed = {k: v for k, v in batch.items() if k in self.input_names}
        logits = self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)
        logits = logits - logits.max(-1, keepdims=True)
        np.exp(logits, out=logits)
        probs = logits / logits.sum(-1, keepdims=True)
        ids = probs.argmax(-1)
        return ids, np.take_along_axis(probs, ids[..., None], -1)[..., 0]


def run_features(
    backend: Any, features: Any, *, token_budget: int = DEFAULT_TOKEN_BUDGET, max_batch: int = DEFAULT_MAX_BATCH,
    pad_token_id: int = 0, pad_multiple: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run `backend` over tokenized features (`tokclf.text.features.tokenize_split`).

    Rows are sorted by length (longest first) and packed into batches of at most `max_batch`
    rows and `token_budget` tokens (rows x the batch's padded length; a row longer than the
    budget runs alone). A batch is padded to its longest row rounded up to `pad_multiple`
    (default `PAD_MULTIPLE`). Returns (label ids, probabilities), each (n_features, max_len) in the
    features' own order; positions past a row's length hold -1 / 0.
    """
    import pyarrow.compute as pc

    from tokclf.inference.forward import model_input_columns

    n = len(features)
    if n == 0:
        return np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    columns = [c for c in model_input_columns(features) if c in backend.input_names]
    table = features.select_columns(columns).with_format("arrow")[:]
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy().astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = {c: pc.list_flatten(table.column(c)).to_numpy().astype(np.int64) for c in columns}
    width_all = int(lengths.max())
    ids_out = np.full((n, width_all), -1, dtype=np.int64)
    conf_out = np.zeros((n, width_all), dtype=np.float32)
    order = np.argsort(-lengths, kind="stable")
    multiple = PAD_MULTIPLE if pad_multiple is None else max(1, pad_multiple)
    start = 0
    while start < n:
        longest = int(lengths[order[start]])
        width = -(-longest // multiple) * multiple
        rows = max(1, min(max_batch, token_budget // width))
        idx = order[start:start + rows]
        start += len(idx)
        cols = np.arange(width)
        valid = cols[None, :] < lengths[idx][:, None]
        source = (offsets[idx][:, None] + cols[None, :])[valid]
        batch = {}
        for c in columns:
            arr = np.full((len(idx), width), pad_token_id if c == "input_ids" else 0, dtype=np.int64)
            arr[valid] = flat[c][source]
            batch[c] = arr
        pred, conf = backend(batch)
        ids_out[idx, :longest] = np.where(valid, pred, -1)[:, :longest]
        conf_out[idx, :longest] = np.where(valid, conf, 0.0)[:, :longest]
    return ids_out, conf_out


# ------------------------------------------------------------------------------------------------
# The predictor
# ------------------------------------------------------------------------------------------------


def resolve_precision(mixed_precision: str | None, *, backend: str = "pytorch") -> str | None:
    """"auto" -> "bf16" where the hardware runs it natively (CPU with AVX512-BF16/AMX, or a GPU
    with bf16), else None (fp32). "fp32"/"none"/None -> None. Others are checked by
    `tokclf.core.hardware.check_precision`."""
    from tokclf.core.hardware import check_precision, cpu_has_native_bf16, has_cuda

    value = None if mixed_precision in (None, "none", "fp32") else mixed_precision
    if value not in (None, "auto", "bf16", "fp16"):
        raise TokclfError(f"mixed_precision={mixed_precision!r} is not one of {', '.join(PRECISIONS)}",
                          where="mixed_precision", fix="use auto, fp32, bf16 or fp16.")
    if backend == "onnx":
        if value not in (None, "auto"):
            log.warning("mixed_precision=%s ignored: an ONNX model runs in its exported precision", value)
        return None
    if value == "auto":
        if has_cuda():
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else None
    check_precision(value)
    return value


def find_onnx(path: Path) -> tuple[Path, Path, str] | None:
    """(export folder, .onnx file, precision) when `path` is an ONNX export or a .onnx file."""
    if path.is_file() and path.suffix == ".onnx":
        folder = path.parent
        manifest = _read_manifest(folder)
        precision = next((p for p, f in manifest.get("files", {}).items() if f == path.name), "fp32")
        return folder, path, precision
    if path.is_dir():
        manifest = _read_manifest(path)
        if manifest:
            precision = manifest.get("default", "fp32")
            return path, path / manifest["files"][precision], precision
        if (path / "model.onnx").is_file():
            return path, path / "model.onnx", "fp32"
    return None


def _read_manifest(folder: Path) -> dict[str, Any]:
    file = folder / ONNX_MANIFEST
    if not file.is_file():
        return {}
    return json.loads(file.read_text(encoding="utf-8"))


class Predictor:
    """A loaded model ready to tag words: a `tokclf train` folder (PyTorch) or a `tokclf export`
    folder / .onnx file (onnxruntime). Load once, call `predict` many times (the server does)."""

    def __init__(
        self,
        model: str | Path,
        *,
        mixed_precision: str | None = "auto",
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        batch_size: int = DEFAULT_MAX_BATCH,
        max_seq_length: int | None = None,
        stride: int | None = None,
    ) -> None:
        from tokclf.core.resources import resolve_model_path

        if token_budget < 1 or batch_size < 1:
            raise TokclfError(f"token budget ({token_budget}) and batch size ({batch_size}) must be positive",
                              fix="pass e.g. --batch-tokens 4096 --batch-size 256.")
        self.source = str(model)
        path = Path(resolve_model_path(str(model))).expanduser()
        onnx = find_onnx(path)
        saved: dict[str, Any]
        if onnx is not None:
            from tokclf.text.tokenizer import load_tokenizer

            folder, onnx_file, precision = onnx
            resolve_precision(mixed_precision, backend="onnx")
            manifest = _read_manifest(folder)
            labels_file = folder / "labels.json"
            if not labels_file.is_file():
                raise TokclfError("labels.json is missing beside the ONNX model", where=str(folder),
                                  fix="re-export the model with `tokclf export --format onnx`.")
            id2label = json.loads(labels_file.read_text(encoding="utf-8"))["id2label"]
            names = [id2label[str(i)] for i in range(len(id2label))]
            self.tokenizer = load_tokenizer(str(folder))
            self.backend: Any = OnnxBackend(onnx_file, precision)
            saved = manifest
        else:
            from tokclf.evaluation.scoring import load_trained

            precision = resolve_precision(mixed_precision)
            model_obj, self.tokenizer, names, saved = load_trained(str(model))
            if names is None:
                id2label = getattr(model_obj.config, "id2label", None) or {}
                names = [str(id2label.get(i, f"LABEL_{i}")) for i in range(model_obj.config.num_labels)]
            self.backend = TorchBackend(model_obj, precision)
        from tokclf.evaluation.metrics import is_bio

        self.label_names: list[str] = list(names)
        self.is_bio = is_bio(self.label_names)
        self.max_seq_length = int(max_seq_length or saved.get("max_seq_length", 128))
        self.stride = int(stride if stride is not None else saved.get("stride", 32))
        if self.stride * 2 >= self.max_seq_length - 2:
            self.stride = max(0, (self.max_seq_length - 3) // 2)
        self.token_budget = token_budget
        self.batch_size = batch_size

    @property
    def description(self) -> dict[str, Any]:
        return {"model": self.source, "backend": self.backend.name, "precision": self.backend.precision,
                "labels": self.label_names, "max_seq_length": self.max_seq_length, "stride": self.stride}

    # -- words in, tags out ---------------------------------------------------------------------

    def tag_words(self, sentences: Sequence[Sequence[str]]) -> tuple[list[list[int]], list[list[float]]]:
        """One label id and its probability per word of every sentence (empty ones included)."""
        import datasets

        from tokclf.text.features import merge_word_predictions, merge_word_probabilities, tokenize_split

        keep = [i for i, s in enumerate(sentences) if len(s)]
        ids: list[list[int]] = [[] for _ in sentences]
        probs: list[list[float]] = [[] for _ in sentences]
        if not keep:
            return ids, probs
        schema = datasets.Features({"tokens": datasets.List(datasets.Value("string"))})
        ds = datasets.Dataset.from_dict({"tokens": [list(sentences[i]) for i in keep]}, features=schema)
        features = tokenize_split(ds, self.tokenizer, max_seq_length=self.max_seq_length, stride=self.stride,
                                  strategy="first", label_names=None, with_labels=False)
        pred, conf = run_features(self.backend, features, token_budget=self.token_budget, max_batch=self.batch_size,
                                  pad_token_id=self.tokenizer.pad_token_id or 0)
        word_ids = merge_word_predictions(features, pred, len(keep))
        word_conf = merge_word_probabilities(features, conf[:, :, None], len(keep))
        for j, i in enumerate(keep):
            ids[i] = word_ids[j]
            probs[i] = word_conf[j][:, 0].astype(float).tolist()
        return ids, probs

    # -- inputs in, records out -----------------------------------------------------------------

    def iter_predict(self, inputs: Any, *, progress: bool = False, chunk_size: int = CHUNK_TEXTS) -> Iterator[PredictionRecord]:
        items = as_inputs(inputs)
        bar = _progress(len(items), progress)
        try:
            for lo in range(0, len(items), chunk_size):
                chunk = items[lo:lo + chunk_size]
                prepared = [_prepare(item) for item in chunk]
                ids, probs = self.tag_words([p[1] for p in prepared])
                for item, (text, words, spans), word_ids, word_probs in zip(chunk, prepared, ids, probs):
                    tags = [self.label_names[i] for i in word_ids]
                    entities = build_entities(tags, word_probs, text, spans) if self.is_bio else []
                    yield PredictionRecord(
                        text=text, words=list(words), spans=spans, tags=tags, scores=word_probs, entities=entities,
                        gold=item.gold, pretokenized=item.words is not None, meta=dict(item.meta),
                    )
                bar.update(len(chunk))
        finally:
            bar.close()

    def predict(self, inputs: Any, *, progress: bool = False) -> list[PredictionRecord]:
        return list(self.iter_predict(inputs, progress=progress))


def predict(
    model: str | Path | Predictor,
    inputs: Any,
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    batch_size: int = DEFAULT_MAX_BATCH,
    mixed_precision: str | None = "auto",
    max_seq_length: int | None = None,
    stride: int | None = None,
    progress: bool = False,
) -> list[PredictionRecord]:
    """Tag `inputs` (see the module docstring) with a model folder, an ONNX export or a Predictor.

    mixed_precision: "auto" (bf16 where the hardware runs it natively, else fp32), None/"fp32",
        "bf16" or "fp16" (GPU). Ignored for ONNX models, which run in their exported precision.
    token_budget / batch_size: a batch holds at most this many tokens (rows x padded length)
        and rows. max_seq_length / stride default to the training run's.
    """
    predictor = model if isinstance(model, Predictor) else Predictor(
        model, mixed_precision=mixed_precision, token_budget=token_budget, batch_size=batch_size,
        max_seq_length=max_seq_length, stride=stride,
    )
    return predictor.predict(inputs, progress=progress)


def _prepare(item: PredictionInput) -> tuple[str, list[str], list[tuple[int, int]]]:
    if item.words is not None:
        text, spans = join_words(item.words)
        return text, item.words, spans
    text = item.text or ""
    words, spans = split_words(text)
    return text, words, spans


def _progress(total: int, show: bool) -> Any:
    from tokclf.core.progress import progress_bar

    return progress_bar(total, show, desc="Predicting", unit=" texts", file=sys.stderr, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------


def as_inputs(inputs: Any) -> list[PredictionInput]:
    """Normalise anything `predict` accepts into a list of PredictionInput."""
    if isinstance(inputs, str):
        return [PredictionInput(text=inputs)]
    if isinstance(inputs, Path):
        return read_inputs(inputs)
    if hasattr(inputs, "column_names") and hasattr(inputs, "features"):  # a datasets.Dataset
        return _from_dataset(inputs, None)
    out = []
    for i, item in enumerate(inputs):
        if isinstance(item, PredictionInput):
            out.append(item)
        elif isinstance(item, str):
            out.append(PredictionInput(text=item))
        elif isinstance(item, dict):
            out.append(_from_mapping(item, where=f"input {i}"))
        elif isinstance(item, (list, tuple)) and all(isinstance(w, str) for w in item):
            out.append(PredictionInput(words=list(item)))
        else:
            raise TokclfError(
                f"input {i} is a {type(item).__name__}; expected a text (str), a list of words, "
                "or a dict with 'text' or 'tokens'", where="inputs",
                fix="pass texts as strings and pre-split sentences as lists of strings.",
            )
    return out


def _from_mapping(record: dict[str, Any], *, where: str, text_column: str = "text", tokens_column: str = "tokens",
                  tags_column: str = "tags") -> PredictionInput:
    meta = {"id": record["id"]} if "id" in record else {}
    if tokens_column in record:
        words = record[tokens_column]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataError(f"{tokens_column!r} must be a list of strings", where=where,
                            fix=f'write {{"{tokens_column}": ["John", "lives", "here"]}}.')
        gold = record.get(tags_column)
        if gold is not None:
            if not isinstance(gold, list) or len(gold) != len(words):
                raise DataError(f"{tags_column!r} must be a list with one tag per word ({len(words)})", where=where,
                                fix=f"give every word a tag, or leave {tags_column!r} out.")
            gold = [str(t) for t in gold]
        return PredictionInput(words=list(words), gold=gold, meta=meta)
    if text_column in record:
        if not isinstance(record[text_column], str):
            raise DataError(f"{text_column!r} must be a string", where=where, fix=f'write {{"{text_column}": "some text"}}.')
        return PredictionInput(text=record[text_column], meta=meta)
    raise DataError(f"the record has neither {text_column!r} nor {tokens_column!r}; its keys: {', '.join(record)}",
                    where=where, fix="use --text-column / --tokens-column to name the field holding the text or words.")


def _from_dataset(ds: Any, names: list[str] | None, tokens_column: str = "tokens",
                  tags_column: str = "tags") -> list[PredictionInput]:
    from tokclf.data.types import DOCUMENT, LINE

    columns = ds.column_names
    if tokens_column not in columns:
        raise DataError(f"the dataset has no {tokens_column!r} column; its columns: {', '.join(columns)}",
                        fix="name the words column with --tokens-column.")
    data = ds.to_dict()
    if names is None and tags_column in columns:
        feature = getattr(ds.features[tags_column], "feature", None)
        names = list(getattr(feature, "names", None) or []) or None
    out = []
    for i, words in enumerate(data[tokens_column]):
        gold = None
        if tags_column in data:
            gold = [names[t] if names is not None and isinstance(t, int) and 0 <= t < len(names) else str(t)
                    for t in data[tags_column][i]]
        meta = {k: data[c][i] for k, c in (("line", LINE), ("document", DOCUMENT)) if c in data}
        out.append(PredictionInput(words=list(words), gold=gold, meta=meta))
    return out


INPUT_FORMATS = ("auto", "text", "conll", "conllu", "jsonl", "data")
_CONLL_SUFFIXES = {".conll", ".iob", ".iob2", ".bio", ".tsv"}
_DATA_SUFFIXES = {".csv", ".json", ".parquet"}


def detect_format(path: Path) -> str:
    """Input format from the name, and for .txt from the contents: a .txt file is CoNLL when it
    starts with -DOCSTART- or its lines are columns ending in a tag (O, B-X, I-X...); otherwise it
    holds one raw text per line."""
    suffix = path.suffix.lower()
    if path.is_dir():
        return "data"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".conllu":
        return "conllu"
    if suffix in _CONLL_SUFFIXES:
        return "conll"
    if suffix in _DATA_SUFFIXES:
        return "data"
    if suffix == ".txt" or not path.exists():
        return _sniff_txt(path) if path.is_file() else "data"
    return "text"


def _sniff_txt(path: Path) -> str:
    import re

    tag = re.compile(r"^(O|[BIESLU]-\S+)$")
    lines = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                lines.append(line.split())
            if len(lines) >= 200:
                break
    if not lines:
        return "text"
    if lines[0][0] == "-DOCSTART-":
        return "conll"
    tagged = sum(1 for f in lines if len(f) >= 2 and tag.match(f[-1]))
    return "conll" if tagged >= 0.9 * len(lines) else "text"


def read_inputs(
    path: str | Path,
    *,
    input_format: str = "auto",
    text_column: str = "text",
    tokens_column: str = "tokens",
    tags_column: str = "tags",
    split: str = "test",
    conll_token_column: int = 0,
    conll_tag_column: int = -1,
    conllu_tag: str = "upos",
    max_samples: int | None = None,
) -> list[PredictionInput]:
    """Read inputs from a file, "-" (stdin), a data folder or a Hub dataset id.

    Formats ("auto" picks by name, see `detect_format`):
      text   one raw text per line (a trailing newline is not part of the text; empty lines
             give empty records, so output lines match input lines);
      jsonl  one JSON object per line with a text field ("text") or a words field ("tokens",
             with optional "tags" kept as gold), or a bare JSON string (a text); "id" is kept;
      conll  one word per line (first column), blank line between sentences; with two or more
             columns the tag column (last by default) is kept as gold;
      conllu CoNLL-U, the UPOS (or XPOS) column kept as gold;
      data   anything `tokclf.data.ingest.load_labelled_data` reads (CSV, JSON, Parquet, a
             save_to_disk folder, a folder of split files, a Hub id): the words of `split`,
             tags kept as gold.
    """
    if input_format not in INPUT_FORMATS:
        raise TokclfError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}",
                          fix="use --input-format " + "|".join(INPUT_FORMATS) + ".")
    if str(path) == "-":
        return _read_stdin(input_format, text_column=text_column, tokens_column=tokens_column, tags_column=tags_column,
                           conll_token_column=conll_token_column, conll_tag_column=conll_tag_column,
                           conllu_tag=conllu_tag, max_samples=max_samples)
    from tokclf.core.resources import resolve_data_path

    path = Path(resolve_data_path(str(path))).expanduser()
    fmt = detect_format(path) if input_format == "auto" else input_format
    if fmt in ("text", "jsonl", "conll", "conllu") and not path.is_file():
        raise DataError(f"no such file: {path}", fix="check the path (relative to the current folder).")
    if fmt == "text":
        items = _read_text_lines(path)
    elif fmt == "jsonl":
        items = _read_jsonl(path, text_column=text_column, tokens_column=tokens_column, tags_column=tags_column)
    elif fmt == "conll":
        items = _read_conll(path, conll_token_column, conll_tag_column)
    elif fmt == "conllu":
        from tokclf.data.conll import read_conllu

        raw = read_conllu(path, tag=conllu_tag)
        items = [PredictionInput(words=w, gold=[str(t) for t in g], meta={"line": ln, "document": d})
                 for w, g, ln, d in zip(raw.tokens, raw.tags, raw.lines, raw.documents)]
    else:
        from tokclf.data.ingest import load_labelled_data

        data = load_labelled_data(str(path), tokens_column=tokens_column, tags_column=tags_column, train_split=split,
                                  valid_split=None, test_split=None, max_samples=max_samples)
        items = _from_dataset(data.splits[split], data.label_names)
    return items[:max_samples] if max_samples is not None else items


def _read_text_lines(path: Path) -> list[PredictionInput]:
    from tokclf.data.tabular import read_text

    try:
        text = read_text(path)
    except DataError as exc:
        if "empty" in exc.what:
            return []
        raise
    return _text_items(text)


def _text_items(text: str) -> list[PredictionInput]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [PredictionInput(text=line.removesuffix("\r"), meta={"line": i})
            for i, line in enumerate(lines, 1)]


def _read_jsonl(path: Path, **columns: str) -> list[PredictionInput]:
    from tokclf.data.tabular import read_text

    return _jsonl_items(read_text(path), str(path), **columns)


def _jsonl_items(text: str, source: str, **columns: str) -> list[PredictionInput]:
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source}, line {lineno}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=where,
                            fix="write one JSON object per line.") from None
        if isinstance(value, str):
            item = PredictionInput(text=value)
        elif isinstance(value, dict):
            item = _from_mapping(value, where=where, **columns)
        else:
            raise DataError(f"a JSON {type(value).__name__} is not an input", where=where,
                            fix='write {"text": "..."} or {"tokens": [...]} on each line.')
        item.meta.setdefault("line", lineno)
        out.append(item)
    return out


def _read_conll(path: Path, token_column: int, tag_column: int) -> list[PredictionInput]:
    from tokclf.data.conll import DOCSTART, read_conll

    ncols = 0
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            fields = line.strip().split("\t") if "\t" in line.strip() else line.split()
            if fields and fields[0] != DOCSTART:
                ncols = len(fields)
                break
    if ncols == 1:
        raw = read_conll(path, token_column=0, tag_column=0)
        return [PredictionInput(words=w, meta={"line": ln, "document": d})
                for w, ln, d in zip(raw.tokens, raw.lines, raw.documents)]
    raw = read_conll(path, token_column=token_column, tag_column=tag_column)
    return [PredictionInput(words=w, gold=[str(t) for t in g], meta={"line": ln, "document": d})
            for w, g, ln, d in zip(raw.tokens, raw.tags, raw.lines, raw.documents)]


def _read_stdin(input_format: str, **kwargs: Any) -> list[PredictionInput]:
    text = sys.stdin.read()
    fmt = "text" if input_format == "auto" else input_format
    if fmt == "text":
        return _text_items(text)
    if fmt == "jsonl":
        return _jsonl_items(text, "<stdin>", text_column=kwargs["text_column"], tokens_column=kwargs["tokens_column"],
                            tags_column=kwargs["tags_column"])
    if fmt in ("conll", "conllu"):
        # The CoNLL readers take a path: spool stdin to a temporary file.
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / f"stdin.{fmt}"
            file.write_text(text, encoding="utf-8")
            return read_inputs(file, input_format=fmt, conll_token_column=kwargs["conll_token_column"],
                               conll_tag_column=kwargs["conll_tag_column"], conllu_tag=kwargs["conllu_tag"])
    raise TokclfError("--input-format data cannot read stdin", fix="pass the data path with --input.")


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------

OUTPUT_FORMATS = ("auto", "jsonl", "conll", "table")


def output_format_for(path: str | None, fmt: str, *, count: int, tty: bool) -> str:
    """"auto": by the output file's extension (.conll/.tsv/.txt/.iob/.bio -> conll, else jsonl);
    on stdout a table for up to 20 records on a terminal, else jsonl."""
    if fmt != "auto":
        return fmt
    if path and path != "-":
        return "conll" if Path(path).suffix.lower() in {".conll", ".tsv", ".txt", ".iob", ".iob2", ".bio"} else "jsonl"
    return "table" if tty and count <= 20 else "jsonl"


def write_jsonl(records: Iterable[PredictionRecord], fh: Any) -> None:
    for rec in records:
        fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")


def write_conll(records: Iterable[PredictionRecord], fh: Any) -> None:
    """`word TAB tag` per line, `word TAB gold TAB tag` when the input had gold tags (the
    conlleval column order: `tokclf evaluate`'s scoring or conlleval.pl read it), a blank line
    after each record, and -DOCSTART- lines where the input's documents change."""
    document = 0
    for rec in records:
        doc = rec.meta.get("document", 0)
        columns = 3 if rec.gold is not None else 2
        if doc != document:
            fh.write("\t".join(["-DOCSTART-"] + ["O"] * (columns - 1)) + "\n\n")
            document = doc
        for i, (word, tag) in enumerate(zip(rec.words, rec.tags)):
            word = word.replace("\t", " ")
            fh.write(f"{word}\t{rec.gold[i]}\t{tag}\n" if rec.gold is not None else f"{word}\t{tag}\n")
        fh.write("\n")


def write_table(records: Iterable[PredictionRecord], fh: Any) -> None:
    """A readable listing for a handful of texts: each text, then one line per entity (type,
    text, [start:end], score); for label sets without entities (POS) the word/TAG pairs."""
    for n, rec in enumerate(records, 1):
        fh.write(f"[{n}] {rec.text}\n")
        if rec.entities:
            width = max(len(e["type"]) for e in rec.entities)
            for e in rec.entities:
                fh.write(f"    {e['type']:<{width}}  {e['text']!r:<30} [{e['start']}:{e['end']}]  {e['score']:.2f}\n")
        elif rec.tags and not any(t != "O" for t in rec.tags):
            fh.write("    (no entities)\n")
        elif rec.tags and not any(t.startswith(("B-", "I-", "E-", "S-", "L-", "U-")) for t in rec.tags):
            fh.write("    " + " ".join(f"{w}/{t}" for w, t in zip(rec.words, rec.tags)) + "\n")
        else:
            fh.write("    (no entities)\n")
        fh.write("\n")


WRITERS = {"jsonl": write_jsonl, "conll": write_conll, "table": write_table}


@contextlib.contextmanager
def atomic_text_file(path: str | Path) -> Iterator[Any]:
    """Open a temporary file beside `path`; it replaces `path` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_records(records: Iterable[PredictionRecord], output: str | Path | None, fmt: str) -> None:
    """Write records as `fmt` to `output` (atomically), or to stdout when output is None or "-"."""
    writer = WRITERS[fmt]
    if output is None or str(output) == "-":
        writer(records, sys.stdout)
        sys.stdout.flush()
        return
    with atomic_text_file(output) as fh:
        writer(records, fh)


def score_records(records: Sequence[PredictionRecord], label_names: Sequence[str]) -> dict[str, Any] | None:
    """`tokclf.evaluation.metrics.compute_metrics` of predicted vs gold tags (the records that have gold),
    the way `tokclf evaluate` scores; None when no record has gold tags."""
    from tokclf.evaluation.metrics import compute_metrics

    with_gold = [r for r in records if r.gold is not None]
    if not with_gold:
        return None
    names = list(label_names)
    extra = sorted({t for r in with_gold for t in r.gold or []} - set(names))
    names += extra
    index = {n: i for i, n in enumerate(names)}
    gold = [[index[t] for t in r.gold or []] for r in with_gold]
    pred = [[index[t] for t in r.tags] for r in with_gold]
    metrics = compute_metrics(gold, pred, names)
    if extra:
        metrics["note_gold_tags"] = f"gold tags the model does not have: {', '.join(extra)}"
    return metrics


# `tokclf.inference.predictor(...)` (the spelling) must work whether `tokclf.inference.predictor` names this
# module (it does as soon as anything imports it) or the function (tokclf.__init__'s lazy
# export): calling the module calls `predict`.
class _CallableModule(type(sys)):
    def __call__(self, *args: Any, **kwargs: Any) -> list[PredictionRecord]:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
