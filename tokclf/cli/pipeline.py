"""`tokclf stage <name>`: the pipeline's stages on the command line (what dvc.yaml runs).

Each subcommand reads the parameters from `--config` (params.yaml, sections flattened) and calls
one function of tokclf.pipeline.stages with the paths given; defaults are the paths dvc.yaml declares.
Registered through tokclf.cli.main.EXTENSIONS; heavy imports stay inside the commands.

    tokclf stage ingest    [--raw data/raw] [--out data/prepared]
    tokclf stage validate  [--data data/prepared] [--out data/validated] [--report reports/validation_report.json]
    tokclf stage tokenize  [--data data/validated] [--out data/features]
    tokclf stage train     [--data data/validated] [--features data/features] [--report ...] [--out PROJECT_NAME]
    tokclf stage evaluate  [--model PROJECT_NAME] [--data data/validated] [--features data/features]
                           [--metrics reports/metrics.json] [--details reports/evaluation.json] [--plots reports/plots]
    tokclf stage publish   [--model PROJECT_NAME] [--out reports/publish.json]
    tokclf stage plots     [--plots reports/plots]       (PNGs again from the plot data)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    from tokclf.pipeline.paths import (
        EVALUATION,
        FEATURES,
        METRICS,
        PLOTS,
        PREPARED,
        PUBLISH,
        RAW,
        VALIDATED,
        VALIDATION_REPORT,
    )

    p = subparsers.add_parser(
        "stage", help="run one pipeline stage (what dvc.yaml calls): ingest, validate, tokenize, train, evaluate, publish",
        description="Run one stage of the pipeline with explicit input and output paths (defaults: dvc.yaml's).",
    )
    sub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text)
        sp.add_argument("--config", default="params.yaml", help="parameters file (default: params.yaml)")
        sp.set_defaults(func=cmd_stage, stage_name=name)
        return sp

    sp = add("ingest", "data source -> data/raw (copy) + data/prepared (normalised)")
    sp.add_argument("--raw", default=RAW)
    sp.add_argument("--out", default=PREPARED)

    sp = add("validate", "check the data; exit 1 on hard errors (the report is written either way)")
    sp.add_argument("--data", default=PREPARED)
    sp.add_argument("--out", default=VALIDATED)
    sp.add_argument("--report", default=VALIDATION_REPORT)

    sp = add("tokenize", "validated data -> aligned model features")
    sp.add_argument("--data", default=VALIDATED)
    sp.add_argument("--out", default=FEATURES)

    sp = add("train", "fine-tune on the features; writes the model folder")
    sp.add_argument("--data", default=VALIDATED)
    sp.add_argument("--features", default=FEATURES)
    sp.add_argument("--report", default=VALIDATION_REPORT)
    sp.add_argument("--out", help="model folder (default: project_name)")

    sp = add("evaluate", "score the model; metrics.json, per-type scores, plot data and PNGs")
    sp.add_argument("--model", help="model folder (default: project_name)")
    sp.add_argument("--data", default=VALIDATED)
    sp.add_argument("--features", default=FEATURES)
    sp.add_argument("--metrics", default=METRICS)
    sp.add_argument("--details", default=EVALUATION)
    sp.add_argument("--plots", default=PLOTS)

    sp = add("publish", "push the model to the Hub when push_to_hub is true (else a recorded no-op)")
    sp.add_argument("--model", help="model folder (default: project_name)")
    sp.add_argument("--out", default=PUBLISH)
    sp.add_argument("--retries", type=int, default=3, help="retries on transient Hub errors, with backoff")

    sp = sub.add_parser("plots", help="draw the PNGs again from the plot data in reports/plots")
    sp.add_argument("--plots", default=PLOTS)
    sp.set_defaults(func=cmd_plots)


def cmd_stage(args: argparse.Namespace) -> int:
    from tokclf.core.errors import ValidationFailed
    from tokclf.pipeline import stages
    from tokclf.pipeline.paths import load_params

    params = load_params(args.config)
    name = args.stage_name
    try:
        if name == "ingest":
            result = stages.ingest(params, raw_dir=args.raw, out_dir=args.out)
        elif name == "validate":
            result = stages.validate(params, data_dir=args.data, out_dir=args.out, report_path=args.report)
        elif name == "tokenize":
            result = stages.tokenize(params, data_dir=args.data, out_dir=args.out)
        elif name == "train":
            result = stages.train(params, data_dir=args.data, features_dir=args.features, report_path=args.report,
                             out_dir=args.out or params.project_name)
            result = {k: v for k, v in result.items() if k != "metrics"}
        elif name == "evaluate":
            result = stages.evaluate(params, model_dir=args.model or params.project_name, data_dir=args.data,
                                features_dir=args.features, metrics_path=args.metrics, details_path=args.details,
                                plots_dir=args.plots)
        elif name == "publish":
            result = stages.publish(params, model_dir=args.model or params.project_name, out_path=args.out,
                               retries=max(0, args.retries))
        else:  # pragma: no cover - argparse restricts the names
            raise AssertionError(name)
    except ValidationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.report_path:
            print(f"the full report is in {exc.report_path}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    from tokclf.evaluation.plots import render_pngs

    for path in render_pngs(args.plots):
        print(path)
    return 0
