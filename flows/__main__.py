"""`python -m flows run|retrain|serve` from the repository root.

    python -m flows run [--config params.yaml] [--workdir .] [--record-with-dvc [--dvc-push]]
    python -m flows retrain [--config params.yaml] [--workdir .] [--force] [--no-record-with-dvc] [--dvc-push]
    python -m flows annotate --labelstudio-url URL --project-id N [--config params.yaml] [--workdir .] [--force]
    python -m flows serve [--workdir .] [--deployments prefect.yaml] [--only NAME ...]

`run`, `retrain` and `annotate` execute one flow run in this process (against PREFECT_API_URL, or Prefect's
temporary local server when none is set); `serve` registers the deployments of prefect.yaml on
the server and runs what is triggered or scheduled until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


# Quiet and offline by default (scripts/pipeline.sh sets the same).
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one training flow run")
    run.add_argument("--config", default="params.yaml")
    run.add_argument("--workdir", default=".")
    run.add_argument("--record-with-dvc", action="store_true")
    run.add_argument("--dvc-push", action="store_true")
    rt = sub.add_parser("retrain", help="one retraining flow run (skips when nothing changed)")
    rt.add_argument("--config", default="params.yaml")
    rt.add_argument("--workdir", default=".")
    rt.add_argument("--force", action="store_true")
    rt.add_argument("--record-with-dvc", action=argparse.BooleanOptionalAction, default=True)
    rt.add_argument("--dvc-push", action="store_true")
    an = sub.add_parser("annotate", help="one annotation-loop run: Label Studio export -> retrain if changed -> "
                                         "pre-annotations (token: $LABEL_STUDIO_API_KEY)")
    an.add_argument("--labelstudio-url", required=True, help="e.g. http://localhost:8080")
    an.add_argument("--project-id", required=True, type=int)
    an.add_argument("--config", default="params.yaml")
    an.add_argument("--workdir", default=".")
    an.add_argument("--token-env", default="LABEL_STUDIO_API_KEY",
                    help="environment variable holding the Label Studio token (default LABEL_STUDIO_API_KEY)")
    an.add_argument("--token-secret", default=None, help="or: a Prefect Secret block holding it")
    an.add_argument("--force", action="store_true")
    sv = sub.add_parser("serve", help="serve the deployments of prefect.yaml")
    sv.add_argument("--workdir", default=".")
    sv.add_argument("--deployments", default="prefect.yaml", help="deployment file (default: prefect.yaml)")
    sv.add_argument("--only", nargs="*", help="deployment names to serve (default: all)")
    sv.add_argument("--limit", type=int, default=1, help="flow runs at a time (default 1)")
    args = parser.parse_args(argv)
    import logging

    # tokclf's own notices (resuming from a checkpoint, a damaged checkpoint skipped) reach the flow
    # run's console as they do in `tokclf train`: Prefect leaves loggers it does not know at WARNING.
    logging.getLogger("tokclf").setLevel(logging.INFO)

    from tokclf.core.errors import TokclfError

    try:
        if args.command == "serve":
            from flows.serve import serve_deployments

            serve_deployments(args.deployments, workdir=args.workdir, only=args.only, limit=args.limit)
            return 0
        if args.command == "run":
            from flows.training import training_flow

            result = training_flow(config=args.config, workdir=args.workdir, record_with_dvc=args.record_with_dvc,
                                   dvc_push=args.dvc_push)
        elif args.command == "annotate":
            from flows.annotation import annotation_loop_flow

            result = annotation_loop_flow(labelstudio_url=args.labelstudio_url, project_id=args.project_id,
                                          config=args.config, workdir=args.workdir, labelstudio_token_env=args.token_env,
                                          labelstudio_token_secret=args.token_secret, force=args.force)
        else:
            from flows.retraining import retraining_flow

            result = retraining_flow(config=args.config, workdir=args.workdir, force=args.force,
                                     record_with_dvc=args.record_with_dvc, dvc_push=args.dvc_push)
    except TokclfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
