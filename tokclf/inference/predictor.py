"""Predict tags and entities with a trained model (PyTorch folder or ONNX export).

    from tokclf import predict
    records = predict("outputs/wnut16-minilm", ["Steve Jobs founded Apple in Cupertino ."])
    records[0].entities   # [{"type": "person", "text": "Steve Jobs", "start": 0, "end": 10, "score": 0.97, "words": [0, 2]}, ...]

Inputs: anything `tokclf.inference.inputs.as_inputs` accepts: a string (one raw text), a
`pathlib.Path` (a file), a list of strings (raw texts), a list of word lists (pre-split),
`PredictionInput`s, dicts with "text" or "tokens" (and "tags"), or a `datasets.Dataset`.

How a text becomes predictions:
- Raw text is split into words by `tokclf.text.words.split_words` (documented there), which keeps
  each word's character offsets into the original string. Pre-split words are used as given;
  their `text` is the words joined by single spaces and offsets refer to that string.
- A span export's documents (`PredictionInput.document`: Label Studio tasks, brat files...) are
  tagged sentence by sentence (`tokclf.text.sentences`) when the model was trained on sentence
  records (`span_records`, "sentence" for models trained on tag data too), and come back on the
  whole document's words and offsets.
- A model trained with `document_context` (training_params.json / the ONNX manifest) reads
  every raw text and span document as a document: it is cut into sentences (`tokclf.text.sentences`),
  each sentence is tagged with its neighbours' pieces as context (`tokclf.text.context`), and
  the record lists the sentences (`PredictionRecord.sentences`, `per_sentence()`); consecutive
  CoNLL/CoNLL-U/dataset sentences of one document are each other's context.
- Words are tokenized with training's tokenizing code (`tokclf.text.features`): as numpy arrays
  (`tokenize_words`, no datasets/pyarrow/pandas import) without document context, through
  `tokenize_split` with it. Nothing is truncated: a text longer than the model window is covered
  by overlapping windows, and every word takes its prediction from the window where it sits
  farthest from an edge.
- The model runs in the one batched forward pass (`tokclf.inference.forward`), in bf16 where the
  CPU (AVX512-BF16/AMX) or GPU supports it; each word's label is chosen by
  `tokclf.inference.decoding` (the training run's `decoding`: Viterbi over the scheme's valid
  sequences, or argmax) and its score is that label's probability.
- Entities group words by the BIO/IOBES tags exactly as `tokclf.evaluation.metrics` scores them
  (`tokclf.inference.entities`); an entity's score is the mean of its words' scores. Label sets
  that are not BIO (POS tags) give tags and no entities.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.data.schemes import is_bio
from tokclf.inference.entities import build_entities
from tokclf.inference.forward import DEFAULT_MAX_BATCH, DEFAULT_TOKEN_BUDGET
from tokclf.inference.records import PredictionInput, PredictionRecord
from tokclf.text.words import join_words, split_words

# Texts tokenized and run together; bounds memory on large files and paces the progress bar.
CHUNK_TEXTS = 2048


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
        decoding: str | None = None,
        document_context: int | None = None,
    ) -> None:
        import json

        from tokclf.core.hardware import resolve_precision
        from tokclf.core.resources import resolve_model_path
        from tokclf.inference.loading import (
            context_setting,
            decoding_setting,
            find_onnx,
            load_trained,
            read_manifest,
            window_settings,
        )

        if token_budget < 1 or batch_size < 1:
            raise TokclfError(f"token budget ({token_budget}) and batch size ({batch_size}) must be positive",
                              fix="pass e.g. --batch-tokens 4096 --batch-size 256.", code="E3029")
        self.source = str(model)
        path = Path(resolve_model_path(str(model))).expanduser()
        onnx = find_onnx(path)
        saved: dict[str, Any]
        if onnx is not None:
            from tokclf.inference.backends import OnnxBackend
            from tokclf.text.tokenizer import load_tokenizer

            folder, onnx_file, precision = onnx
            resolve_precision(mixed_precision, backend="onnx")
            manifest = read_manifest(folder)
            labels_file = folder / "labels.json"
            if not labels_file.is_file():
                raise TokclfError("labels.json is missing beside the ONNX model", where=str(folder),
                                  fix="re-export the model with `tokclf export --format onnx`.", code="E3030")
            id2label = json.loads(labels_file.read_text(encoding="utf-8"))["id2label"]
            names = [id2label[str(i)] for i in range(len(id2label))]
            self.tokenizer = load_tokenizer(str(folder))
            self.backend: Any = OnnxBackend(onnx_file, precision)
            saved = manifest
        else:
            from tokclf.inference.backends import TorchBackend

            precision = resolve_precision(mixed_precision)
            model_obj, self.tokenizer, names, saved = load_trained(str(model))
            model_obj.eval()
            if names is None:
                id2label = getattr(model_obj.config, "id2label", None) or {}
                names = [str(id2label.get(i, f"LABEL_{i}")) for i in range(model_obj.config.num_labels)]
            self.backend = TorchBackend(model_obj, precision)
        self.label_names: list[str] = list(names)
        self.is_bio = is_bio(self.label_names)
        self.max_seq_length, self.stride = window_settings(saved, max_seq_length, stride)
        # The training run's decoding (training_params.json / the ONNX manifest) unless overridden.
        self.decoding = decoding_setting(saved, decoding)
        # Span documents are tagged in the unit the model was trained on (span_records; models
        # trained on tag data learnt sentences, so "sentence" unless the run said "document").
        self.span_records = str(saved.get("span_records", "sentence"))
        # Pieces of document context the model was trained with (0: each sentence alone).
        self.document_context = context_setting(saved, document_context)
        self.token_budget = token_budget
        self.batch_size = batch_size

    @property
    def description(self) -> dict[str, Any]:
        return {"model": self.source, "backend": self.backend.name, "precision": self.backend.precision,
                "labels": self.label_names, "max_seq_length": self.max_seq_length, "stride": self.stride,
                "decoding": self.decoding, "document_context": self.document_context}

    # -- words in, tags out ---------------------------------------------------------------------

    def tag_words(self, sentences: Sequence[Sequence[str]], documents: Sequence[int | None] | None = None,
                  ) -> tuple[list[list[int]], list[list[float]]]:
        """One label id and its probability per word of every sentence (empty ones included).
        documents: with document context, a document id per sentence; consecutive sentences with
        the same id are each other's context (None: the sentence stands alone)."""
        from tokclf.inference.decoding import decode_sentences
        from tokclf.inference.forward import word_probabilities
        from tokclf.text.features import tokenize_words

        keep = [i for i, s in enumerate(sentences) if len(s)]
        ids: list[list[int]] = [[] for _ in sentences]
        probs: list[list[float]] = [[] for _ in sentences]
        if not keep:
            return ids, probs
        if self.document_context and documents is not None:
            features = self._features_in_documents([sentences[i] for i in keep], [documents[i] for i in keep])
        else:
            # Flat numpy features (no datasets/pyarrow/pandas import: most of a one-text predict's CPU).
            features = tokenize_words([sentences[i] for i in keep], self.tokenizer,
                                      max_seq_length=self.max_seq_length, stride=self.stride)
        chosen, word_probs = word_probabilities(self.backend, features, len(keep), token_budget=self.token_budget,
                                                max_batch=self.batch_size, pad_token_id=self.tokenizer.pad_token_id or 0)
        decoded = decode_sentences(chosen.split(word_probs), self.label_names, self.decoding)
        for j, (word_ids, word_scores) in enumerate(decoded):
            ids[keep[j]] = word_ids.tolist()
            probs[keep[j]] = word_scores.astype(float).tolist()
        return ids, probs

    def _features_in_documents(self, sentences: list[Sequence[str]], documents: list[int | None]) -> Any:
        """Features of `sentences` with their documents' neighbouring pieces as context
        (`tokenize_split` with `document_context`, which reads the DOCUMENT/SENTENCE columns)."""
        import datasets

        from tokclf.core.columns import DOCUMENT, SENTENCE
        from tokclf.text.features import tokenize_split

        columns: dict[str, Any] = {"tokens": [list(s) for s in sentences]}
        columns[DOCUMENT], columns[SENTENCE] = _places(documents)
        types = {"tokens": datasets.List(datasets.Value("string")), DOCUMENT: datasets.Value("int64"),
                 SENTENCE: datasets.Value("int64")}
        ds = datasets.Dataset.from_dict(columns, features=datasets.Features(types))
        return tokenize_split(ds, self.tokenizer, max_seq_length=self.max_seq_length, stride=self.stride,
                              strategy="first", label_names=None, with_labels=False,
                              document_context=self.document_context)
    def _tag_items(self, items: Sequence[PredictionInput], prepared: Sequence[tuple[str, list[str], list[tuple[int, int]]]],
                   ) -> tuple[list[list[int]], list[list[float]], list[list[tuple[int, int]] | None]]:
        """tag_words over the items, span documents cut into sentences first when the model learnt
        sentences (tokclf.text.sentences), and with document context raw texts too (each text one
        document); each document's tags are its sentences' in order, so words and offsets stay
        the document's. Also returns each item's sentence word ranges (None: not cut)."""
        from tokclf.text.sentences import sentence_ranges

        rows: list[list[str]] = []
        owner: list[int] = []
        documents: list[int | None] = []
        cuts: list[list[tuple[int, int]] | None] = []
        previous: tuple[Any, Any] | None = None
        next_doc = 0
        for k, (item, (text, words, spans)) in enumerate(zip(items, prepared)):
            whole_text = item.document or (self.document_context > 0 and item.words is None)
            ranges = sentence_ranges(text, spans) if whole_text and self.span_records == "sentence" else []
            cuts.append(ranges or None)
            # Document id per row: a cut text is one document; consecutive sentence items of one
            # CoNLL/dataset document (meta document, sentence place >= 0) share one.
            place = item.meta.get("sentence", -1)
            key: tuple[Any, Any] = ("text", k) if ranges else (
                ("doc", item.meta.get("document")) if isinstance(place, int) and place >= 0 else ("alone", k))
            doc: int | None
            if key[0] == "doc" and previous is not None and previous[0] == key and place == previous[1] + 1:
                doc = documents[-1]
            elif key[0] == "alone":
                doc = None
            else:
                doc, next_doc = next_doc, next_doc + 1
            previous = (key, place)
            for a, b in ranges or [(0, len(words))]:
                rows.append(list(words[a:b]))
                owner.append(k)
                documents.append(doc)
        row_ids, row_probs = self.tag_words(rows, documents)
        ids: list[list[int]] = [[] for _ in items]
        probs: list[list[float]] = [[] for _ in items]
        for k, i, p in zip(owner, row_ids, row_probs):
            ids[k].extend(i)
            probs[k].extend(p)
        return ids, probs, cuts

    # -- inputs in, records out -----------------------------------------------------------------

    def iter_predict(self, inputs: Any, *, progress: bool = False, chunk_size: int = CHUNK_TEXTS) -> Iterator[PredictionRecord]:
        from tqdm import tqdm

        from tokclf.inference.inputs import as_inputs

        items = as_inputs(inputs)
        with tqdm(total=len(items), disable=not progress, desc="Predicting", unit=" texts", file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for lo in range(0, len(items), chunk_size):
                chunk = items[lo:lo + chunk_size]
                prepared = [_prepare(item) for item in chunk]
                ids, probs, cuts = self._tag_items(chunk, prepared)
                for item, (text, words, spans), word_ids, word_probs, cut in zip(chunk, prepared, ids, probs, cuts):
                    tags = [self.label_names[i] for i in word_ids]
                    entities = build_entities(tags, word_probs, text, spans) if self.is_bio else []
                    yield PredictionRecord(
                        text=text, words=list(words), spans=spans, tags=tags, scores=word_probs, entities=entities,
                        gold=item.gold, pretokenized=item.words is not None, meta=dict(item.meta), sentences=cut,
                    )
                bar.update(len(chunk))

    def predict(self, inputs: Any, *, progress: bool = False) -> list[PredictionRecord]:
        return list(self.iter_predict(inputs, progress=progress))

    def predict_document(self, document: str | Path) -> list[PredictionRecord]:
        """A whole document (its text, or a text file read whole) -> one record per sentence, each
        sentence tagged with its neighbours as context when the model was trained with
        document_context (offsets into the sentence's own text; meta "sentence" its place)."""
        text = document.read_text(encoding="utf-8") if isinstance(document, Path) else document
        record = self.predict([PredictionInput(text=text, document=True)])[0]
        return record.per_sentence()


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
    decoding: str | None = None,
    document_context: int | None = None,
) -> list[PredictionRecord]:
    """Tag `inputs` (see the module docstring) with a model folder, an ONNX export or a Predictor.

    mixed_precision: "auto" (bf16 where the hardware runs it natively, else fp32), None/"fp32",
        "bf16" or "fp16" (GPU). Ignored for ONNX models, which run in their exported precision.
    token_budget / batch_size: a batch holds at most this many tokens (rows x padded length)
        and rows. max_seq_length / stride default to the training run's.
    """
    predictor = model if isinstance(model, Predictor) else Predictor(
        model, mixed_precision=mixed_precision, token_budget=token_budget, batch_size=batch_size,
        max_seq_length=max_seq_length, stride=stride, decoding=decoding, document_context=document_context,
    )
    return predictor.predict(inputs, progress=progress)


def _places(documents: Sequence[int | None]) -> tuple[list[int], list[int]]:
    """Document ids per row -> (DOCUMENT, SENTENCE) columns: consecutive rows with one id count up
    from 0; a row without an id is sentence -1 of a document of its own."""
    docs: list[int] = []
    places: list[int] = []
    for r, doc in enumerate(documents):
        if doc is None:
            docs.append(-1 - r)
            places.append(-1)
        elif r and documents[r - 1] == doc:
            docs.append(doc)
            places.append(places[-1] + 1)
        else:
            docs.append(doc)
            places.append(0)
    return docs, places


def _prepare(item: PredictionInput) -> tuple[str, list[str], list[tuple[int, int]]]:
    if item.words is not None:
        text, spans = join_words(item.words)
        return text, item.words, spans
    text = item.text or ""
    words, spans = split_words(text)
    return text, words, spans
