"""`tokclf predict`, `tokclf export`, `tokclf serve` (registered through tokclf.cli.main.EXTENSIONS).

Only argparse-level code at import: the commands import torch/transformers/onnx when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tokclf.core.errors import TokclfError

PRECISION_CHOICES = ["auto", "none", "fp32", "bf16", "fp16"]
# Pre-annotation outputs (tokclf.inference.annotations.ANNOTATION_FORMATS; spelled here so --help
# needs no import of the inference room).
ANNOTATION_FORMATS = ("labelstudio", "doccano", "prodigy", "brat", "spacy")
DECODING_HELP = "viterbi: BIO-valid label sequences; argmax: each word's best label (default: the training run's)"


def _precision(value: str | None) -> str | None:
    return None if value in (None, "none", "fp32") else value


# transformers' settings before the first _quiet_loading of a command: `restore_loading` puts them
# back, so a Python caller of `tokclf.cli.main.main()` keeps its own verbosity and progress bars.
_saved_loading: list[tuple[int, bool]] = []


def _quiet_loading(args: argparse.Namespace) -> None:
    """No weight-loading progress bars from transformers on the terminal unless --verbose (for the
    rest of this command; `restore_loading` undoes it)."""
    if getattr(args, "verbose", False):
        return
    from transformers.utils import logging as hf_logging

    if not _saved_loading:
        _saved_loading.append((hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()))
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def restore_loading() -> None:
    """Undo `_quiet_loading` (main() calls it when a command ends)."""
    if not _saved_loading:
        return
    from transformers.utils import logging as hf_logging

    verbosity, bars = _saved_loading.pop()
    hf_logging.set_verbosity(verbosity)
    if bars:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()


def cmd_predict(args: argparse.Namespace) -> int:
    from tokclf.core.fileio import write_json
    from tokclf.evaluation.scoring import score_records
    from tokclf.inference.inputs import read_inputs
    from tokclf.inference.outputs import output_format_for, write_records
    from tokclf.inference.predictor import Predictor

    if args.input is not None and args.texts:
        raise TokclfError("give texts as arguments or --input, not both", fix="tokclf predict --model M --input FILE", code="E8001")
    from_file = args.input is not None
    if args.input is None and not args.texts:
        if sys.stdin.isatty():
            raise TokclfError("nothing to predict", fix='tokclf predict --model M "Some text." (or --input FILE, '
                              "or pipe text lines into stdin)", code="E8002")
        args.input = "-"
    if args.document:
        items: Any = _document_input(args)
    elif args.input is not None:
        items = read_inputs(
            args.input, input_format=args.input_format, text_column=args.text_column,
            tokens_column=args.tokens_column, tags_column=args.tags_column, split=args.split,
            conll_token_column=args.conll_token_column, conll_tag_column=args.conll_tag_column,
            conllu_tag=args.conllu_tag, max_samples=args.max_samples,
        )
    else:
        items = list(args.texts)
    _quiet_loading(args)
    predictor = Predictor(
        args.model, mixed_precision=_precision(args.mixed_precision), token_budget=args.batch_tokens,
        batch_size=args.batch_size, max_seq_length=args.max_seq_length, stride=args.stride, decoding=args.decoding,
        document_context=args.document_context,
    )
    from tokclf.core.phases import mark

    mark("model_load")
    fmt = output_format_for(args.output, args.output_format, count=len(items), tty=sys.stdout.isatty())
    if fmt in ANNOTATION_FORMATS:
        return _predict_annotations(args, predictor, items, fmt)
    show = args.progress if args.progress is not None else (from_file and sys.stderr.isatty())
    has_gold = any(getattr(i, "gold", None) is not None for i in items)
    if args.metrics and not has_gold:
        raise TokclfError("--metrics needs inputs with gold tags (a tag column)", where=str(args.input or "texts"),
                          fix="predict on CoNLL/JSONL/data inputs that carry tags, or drop --metrics.", code="E8003")
    if has_gold:
        records = predictor.predict(items, progress=show)
        write_records(records, args.output, fmt)
        metrics = score_records(records, predictor.label_names)
        if metrics is not None:
            summary = {k: round(metrics[k], 4) for k in ("precision", "recall", "f1", "accuracy")}
            print(f"scores against the input's tags ({metrics['scheme']} level): {json.dumps(summary)}", file=sys.stderr)
            if args.metrics:
                write_json(args.metrics, metrics)
    elif args.document:
        # One record per sentence of the document (tokclf.inference.records.PredictionRecord.per_sentence).
        records = [s for r in predictor.iter_predict(items, progress=show) for s in r.per_sentence()]
        write_records(records, args.output, fmt)
        items = records
    else:
        write_records(predictor.iter_predict(items, progress=show), args.output, fmt)
    mark("predict")
    _skip_final_collection()
    if args.output and args.output != "-":
        print(f"wrote {len(items)} record(s) to {args.output} ({fmt})", file=sys.stderr)
    return 0


def _skip_final_collection() -> None:
    """At exit, move every object to the collector's permanent generation before the interpreter's
    final garbage collection, which otherwise walks the millions of objects torch and transformers
    made (~1 CPU s after the result is out, docs/benchmarks.md). atexit handlers run before that
    collection, and files and streams are closed by the usual finalization either way."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def _document_input(args: argparse.Namespace) -> list[Any]:
    """--document: the whole input file (or stdin, or the texts joined by blank lines) as one text."""
    from pathlib import Path

    from tokclf.data.tabular import read_text
    from tokclf.inference.records import PredictionInput

    if args.input is None:
        text = "\n\n".join(args.texts)
    elif args.input == "-":
        text = sys.stdin.read()
    else:
        text = read_text(Path(args.input))
    return [PredictionInput(text=text, document=True)]


def _predict_annotations(args: argparse.Namespace, predictor: Any, items: Any, fmt: str) -> int:
    """Predictions as pre-annotations for an annotation tool (tokclf.inference.annotations)."""
    from pathlib import Path

    from tokclf.inference.annotations import from_prediction, to_labelstudio_tasks, write_annotations

    if not predictor.is_bio:
        raise TokclfError(f"--output-format {fmt} writes entity spans, but this model's labels are not BIO tags "
                          f"({', '.join(predictor.label_names[:5])}, ...)", fix="use --output-format jsonl or conll.", code="E8004")
    version = args.model_version or Path(str(args.model)).expanduser().resolve().name
    show = args.progress if args.progress is not None else (args.input is not None and sys.stderr.isatty())
    records = [from_prediction(r) for r in predictor.iter_predict(items, progress=show)]
    if not args.output or args.output == "-":
        if fmt in ("brat", "spacy"):
            raise TokclfError(f"--output-format {fmt} writes {'a folder' if fmt == 'brat' else 'a binary file'}",
                              fix=f"give it with -o {'FOLDER' if fmt == 'brat' else 'FILE.spacy'}.", code="E8005")
        from tokclf.inference.annotations import doccano_line, prodigy_line

        if fmt == "labelstudio":
            print(json.dumps(to_labelstudio_tasks(records, model_version=version), ensure_ascii=False, indent=1))
        else:
            for rec in records:
                line = doccano_line(rec) if fmt == "doccano" else prodigy_line(rec, answer=None)
                print(json.dumps(line, ensure_ascii=False))
        return 0
    count = write_annotations(records, args.output, fmt, predictions=True, model_version=version)
    print(f"wrote {count} record(s) to {args.output} ({fmt} pre-annotations, model_version {version})", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tokclf.inference.export import export_model

    _quiet_loading(args)
    manifest = export_model(args.model, args.output, fmt=args.format, quantize=args.quantize, opset=args.opset)
    print(json.dumps({k: manifest[k] for k in ("output_dir", "files", "default", "exporter", "check")}, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tokclf.core.extras import require

    require("fastapi", "uvicorn", feature="`tokclf serve`")
    from tokclf.inference.serve import ServeSettings, serve

    _quiet_loading(args)
    settings = ServeSettings(
        max_body_bytes=args.max_body_bytes, max_texts=args.max_texts, max_text_chars=args.max_text_chars,
        batch_wait_ms=args.batch_wait_ms, batch_tokens=args.batch_tokens,
    )
    serve(args.model, host=args.host, port=args.port, settings=settings,
          mixed_precision=_precision(args.mixed_precision), decoding=args.decoding, log_level="info" if args.verbose else "warning")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "predict", help="tag raw text, text/CoNLL/JSONL files or datasets; entities with character offsets",
        description="Predict tags and entities. Raw text is split into words with offsets kept (see docs/inference.md); "
        "long texts are covered by overlapping windows, nothing is truncated.",
    )
    p.add_argument("texts", nargs="*", help="raw texts to tag (or use --input, or pipe lines into stdin)")
    p.add_argument("--model", required=True, help="a `tokclf train` folder, a `tokclf export` folder or a .onnx file")
    p.add_argument("-i", "--input", help="file to tag ('-' = stdin): .txt (one text per line, or CoNLL), .conll, "
                   ".conllu, .jsonl, .csv/.json/.parquet, a data folder or a Hub dataset id")
    p.add_argument("--input-format", default="auto", choices=["auto", "text", "conll", "conllu", "jsonl", "data",
                                                                *ANNOTATION_FORMATS],
                   help="auto: by name and content (span exports: Label Studio, doccano, Prodigy, brat, spaCy)")
    p.add_argument("-o", "--output", help="write here (atomically) instead of stdout")
    p.add_argument("--output-format", default="auto", choices=["auto", "jsonl", "conll", "table", *ANNOTATION_FORMATS],
                   help="auto: by --output's extension (.conll/.tsv/.txt -> conll, .spacy -> spacy, else jsonl); "
                   "on a terminal a table for up to 20 texts; labelstudio/doccano/prodigy/brat/spacy: "
                   "pre-annotations for that tool (Label Studio: tasks with predictions[])")
    p.add_argument("--model-version", help="Label Studio predictions' model_version (default: the model folder's name)")
    p.add_argument("--metrics", help="with gold tags in the input: write the scores (as `tokclf evaluate`) to this JSON file")
    p.add_argument("--text-column", default="text", help="JSONL field with raw text (default: text)")
    p.add_argument("--tokens-column", default="tokens", help="JSONL/data field with pre-split words (default: tokens)")
    p.add_argument("--tags-column", default="tags", help="JSONL/data field with gold tags (default: tags)")
    p.add_argument("--split", default="test", help="split to read from a data folder or dataset (default: test)")
    p.add_argument("--conll-token-column", type=int, default=0)
    p.add_argument("--conll-tag-column", type=int, default=-1)
    p.add_argument("--conllu-tag", choices=["upos", "xpos"], default="upos")
    p.add_argument("--max-samples", type=int, help="only the first N inputs")
    p.add_argument("--mixed-precision", choices=PRECISION_CHOICES, default="auto",
                   help="auto: bf16 where the CPU/GPU runs it natively, else fp32 (ignored for ONNX models)")
    p.add_argument("--batch-tokens", type=int, default=4096, help="tokens per batch, rows x padded length (default: 4096)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per batch at most (default: 256)")
    p.add_argument("--max-seq-length", type=int, help="window length in subword tokens (default: the training run's)")
    p.add_argument("--stride", type=int, help="overlap between windows (default: the training run's)")
    p.add_argument("--decoding", choices=["viterbi", "argmax"], help=DECODING_HELP)
    p.add_argument("--document", action="store_true",
                   help="read the input (a text file read whole, stdin, or the texts) as one document and write one "
                   "record per sentence; a model trained with document_context tags each sentence with its neighbours")
    p.add_argument("--document-context", type=int,
                   help="pieces of neighbouring text of the same document on each side (default: the training run's)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for files, on a terminal)")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("export", help="export a trained model to ONNX (optionally dynamic int8) for onnxruntime")
    e.add_argument("--model", required=True, help="a `tokclf train` folder")
    e.add_argument("--output", required=True, help="folder to write (model.onnx, tokenizer, labels.json)")
    e.add_argument("--format", default="onnx", choices=["onnx"])
    e.add_argument("--quantize", choices=["none", "int8"], help="int8: also write model_quantized.onnx (dynamic "
                   "int8) and make it the default for `tokclf predict --model OUTPUT`")
    e.add_argument("--opset", type=int, default=17)
    e.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="HTTP server: POST /predict (texts in, entities out), GET /health")
    s.add_argument("--model", required=True, help="a `tokclf train` folder, a `tokclf export` folder or a .onnx file")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get 413 (default: 1 MiB)")
    s.add_argument("--max-texts", type=int, default=256, help="texts per request at most (default: 256)")
    s.add_argument("--max-text-chars", type=int, default=100_000, help="characters per text at most (default: 100000)")
    s.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long to collect concurrent requests into one batch")
    s.add_argument("--batch-tokens", type=int, default=16_384, help="estimated tokens per collected batch at most")
    s.add_argument("--mixed-precision", choices=PRECISION_CHOICES, default="auto")
    s.add_argument("--decoding", choices=["viterbi", "argmax"], help=DECODING_HELP)
    s.set_defaults(func=cmd_serve)
