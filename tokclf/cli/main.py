"""`tokclf` command line: thin over the library (spaCy's cli/ habit). Heavy imports stay inside
the command functions so `tokclf --help` answers quickly.

Flags are generated from TokenClassificationParams, spelled as in the AutoTrain spec
(`--data-path`, `--tokens-column`, `--max-seq-length`, ...). `--config params.yaml` reads the same
parameters from YAML; flags given on the command line override it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import types
import typing
from typing import Any

from tokclf.core.errors import TokclfError

# Params that `validate` understands (data-side only).
DATA_KEYS = (
    "data_path", "tokens_column", "tags_column", "train_split", "valid_split", "test_split", "max_samples",
    "label_names", "conll_token_column", "conll_tag_column", "conllu_tag", "validation_split_ratio", "seed",
    "repair_bio", "max_seq_length", "model",
    "data_format", "span_alignment", "overlapping", "label_map", "span_records",
)


# Modules adding subcommands (predict/export/serve, pipeline stages, publish).
EXTENSIONS = ("tokclf.cli.inference", "tokclf.cli.pipeline", "tokclf.cli.publish", "tokclf.cli.convert")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for `X | None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return annotation, False


def add_param_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    from tokclf.core.params import TokenClassificationParams

    group = parser.add_argument_group("parameters (spec names; see README)")
    for name, info in TokenClassificationParams.model_fields.items():
        if only is not None and name not in only:
            continue
        inner, optional = _unwrap(info.annotation)
        default = info.default if info.default is not None and not callable(info.default) else None
        help_text = (info.description or "") + (f" (default: {default})" if default is not None and "PydanticUndefined" not in str(default) else "")
        # argparse expands %-formats in help strings: a literal "%" (e.g. "~10%") must be doubled.
        help_text = help_text.replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text or None}
        if inner is bool:
            group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if typing.get_origin(inner) is typing.Literal:
            choices = [str(c) for c in typing.get_args(inner)]
            if optional:
                choices.append("none")
            group.add_argument(_flag(name), choices=choices, **kwargs)
            continue
        if name == "data_path":  # repeatable: several sources (tokclf.data.sources)
            group.add_argument(_flag(name), action="append", **kwargs)
            continue
        if inner in (int, float):
            group.add_argument(_flag(name), type=inner, **kwargs)
        else:
            # str, SecretStr, list[str] | str (label names: comma-separated or a file)
            group.add_argument(_flag(name), type=str, **kwargs)


def collect_params(args: argparse.Namespace, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    from tokclf.core.params import TokenClassificationParams, load_config

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_config(args.config))
    fields = TokenClassificationParams.model_fields
    for name in fields:
        if keys is not None and name not in keys:
            continue
        if hasattr(args, name):
            value = getattr(args, name)
            values[name] = None if value == "none" and name in ("valid_split", "test_split", "mixed_precision") else value
    return values


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tokclf").setLevel(logging.INFO)


def cmd_train(args: argparse.Namespace) -> int:
    from tokclf.core.params import params_from_mapping

    source = f"--config {args.config}" if getattr(args, "config", None) else "command line"
    params = params_from_mapping(collect_params(args), source=source)
    from tokclf.training.run import train

    result = train(params)
    summary = {"output_dir": str(result.output_dir)}
    for split in ("validation", "test"):
        m = result.metrics.get(split)
        if m:
            summary[split] = {k: round(m[k], 4) for k in ("precision", "recall", "f1", "accuracy")}
    print(json.dumps(summary, indent=2))
    from tokclf.core.phases import mark

    mark("done")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from tokclf.data.validation import validate

    values = collect_params(args, DATA_KEYS)
    if "data_path" not in values:
        raise TokclfError("--data-path is required", fix="tokclf validate --data-path DATA [--model M]", code="E8006")
    data_path = values.pop("data_path")
    values.pop("seed", None)
    report = validate(data_path, report_path=args.output, **values)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False)[:20000] if args.json else report_text(report))
    return 1 if report.errors else 0


def report_text(report: Any) -> str:
    lines = []
    for p in report.errors:
        lines.append(f"ERROR   {p.where}: {p.message}")
    for p in report.warnings:
        lines.append(f"WARNING {p.where}: {p.message}")
    stats = report.stats
    lines.append(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if isinstance(stats, dict):
        for split, s in (stats.get("splits") or {}).items():
            lines.append(f"  {split}: {s}")
    return "\n".join(lines)


DECODING_HELP = "viterbi: BIO-valid label sequences; argmax: each word's best label (default: the training run's)"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tokclf.evaluation.scoring import evaluate

    extra: dict[str, Any] = {}
    for key in ("conll_token_column", "conll_tag_column", "conllu_tag", "data_format", "span_alignment",
                "overlapping", "label_map", "span_records", "document_column"):
        if getattr(args, key, None) is not None:
            extra[key] = getattr(args, key)
    metrics = evaluate(
        args.model, args.data_path, split=args.split, tokens_column=args.tokens_column, tags_column=args.tags_column,
        max_samples=args.max_samples, batch_size=args.batch_size,
        mixed_precision=None if args.mixed_precision in (None, "none") else args.mixed_precision,
        output=args.output, decoding=args.decoding, document_context=args.document_context, **extra,
    )
    keep = {k: metrics[k] for k in ("split", "precision", "recall", "f1", "accuracy", "scheme", "decoding") if k in metrics}
    keep["per_type"] = metrics.get("per_type")
    if "per_source" in metrics:
        keep["per_source"] = metrics["per_source"]
    print(json.dumps(keep, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tokclf import __version__

    parser = argparse.ArgumentParser(
        prog="tokclf", description="Fine-tune transformer models for token classification (NER, POS, chunking).",
    )
    parser.add_argument("--version", action="version", version=f"tokclf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_train = sub.add_parser("train", help="train a model (flags as in the AutoTrain spec)")
    p_train.add_argument("--config", help="YAML file with parameters; flags override it")
    add_param_flags(p_train)
    p_train.set_defaults(func=cmd_train)

    # AutoTrain spelling: `tokclf token-classification --train ...` runs the same command.
    p_auto = sub.add_parser("token-classification", help="AutoTrain-compatible form: token-classification --train ...")
    p_auto.add_argument("--train", action="store_true", required=True, help="run training")
    p_auto.add_argument("--config", help="YAML file with parameters; flags override it")
    add_param_flags(p_auto)
    p_auto.set_defaults(func=cmd_train)

    p_val = sub.add_parser("validate", help="check data without training; exit 1 on hard errors")
    p_val.add_argument("--config", help="YAML file with parameters (data keys are used)")
    p_val.add_argument("--output", help="write the JSON validation report here")
    p_val.add_argument("--json", action="store_true", help="print the full report as JSON")
    add_param_flags(p_val, DATA_KEYS)
    p_val.set_defaults(func=cmd_validate)

    p_eval = sub.add_parser("evaluate", help="score a trained model on a split (word-level seqeval)")
    p_eval.add_argument("--model", required=True, help="folder written by `tokclf train` (or a Hub id)")
    p_eval.add_argument("--data-path", required=True, action="append",
                        help="data to score (repeat for several sources: scores are also given per source)")
    p_eval.add_argument("--split", default="test")
    p_eval.add_argument("--tokens-column", default="tokens")
    p_eval.add_argument("--tags-column", default="tags")
    p_eval.add_argument("--conll-token-column", type=int)
    p_eval.add_argument("--conll-tag-column", type=int)
    p_eval.add_argument("--conllu-tag", choices=["upos", "xpos"])
    p_eval.add_argument("--data-format", choices=["auto", "tags", "labelstudio", "doccano", "prodigy", "brat", "spacy"])
    p_eval.add_argument("--label-map", help="rename/merge types, as in training (A=B,C=B or a YAML/JSON file)")
    p_eval.add_argument("--span-alignment", choices=["expand", "contract", "strict"])
    p_eval.add_argument("--overlapping", choices=["error", "longest", "first"])
    p_eval.add_argument("--max-samples", type=int)
    p_eval.add_argument("--batch-size", type=int, default=64)
    p_eval.add_argument("--mixed-precision", choices=["none", "bf16", "fp16"])
    p_eval.add_argument("--output", help="write metrics JSON here")
    p_eval.add_argument("--decoding", choices=["viterbi", "argmax"], help=DECODING_HELP)
    p_eval.add_argument("--document-context", type=int,
                        help="pieces of neighbouring text of the same document on each side (default: the training run's)")
    p_eval.add_argument("--document-column", help="tabular data: the column whose equal values form one document "
                        "(default: the training run's)")
    p_eval.set_defaults(func=cmd_evaluate)

    # Further command groups live in their own modules (each exposes `register(subparsers)`), so
    # that this file stays small and start-up imports only argparse-level code.
    import importlib

    for module in EXTENSIONS:
        try:
            ext = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        ext.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM outside training (predict, export, evaluate, ...): unwinds like Ctrl-C, so every
    atomic write and staging folder on the way out is removed, then exits 143."""


def _model_in_place() -> bool:
    """Whether a training run of this process has already put its finished model folder in place
    (tokclf.training.signals; not imported unless this command trained)."""
    signals = sys.modules.get("tokclf.training.signals")
    return bool(signals and signals.outputs_in_place())


def _terminated(signum: int, frame: Any) -> None:
    if _model_in_place():
        return  # the work is done; only printing and exiting remain
    raise Terminated()


def _interrupted(signum: int, frame: Any) -> None:
    if _model_in_place():
        return
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tokclf.core.phases import mark

    mark("cli")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    import signal
    import threading

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Training and serving install their own handlers for their duration (tokclf.training.signals,
        # tokclf.inference.serve); these cover everything else, for this command only.
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _terminated),
                    signal.SIGINT: signal.signal(signal.SIGINT, _interrupted)}
    try:
        return int(args.func(args))
    except TokclfError as exc:
        print(f"{getattr(exc, 'prefix', 'error: ')}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM); nothing was written", file=sys.stderr)
        return 143
    finally:
        # A Python caller of main() gets its own SIGTERM handler and transformers settings back.
        # Run as the program (argv None) after a model was put in place, a signal during the exit
        # must not turn the finished run into a death by signal (which a scheduler would rerun).
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if argv is None and _model_in_place() else handler)
        from tokclf.cli.inference import restore_loading

        restore_loading()
