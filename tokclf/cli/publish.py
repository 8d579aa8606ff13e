"""`tokclf publish`: push an existing model folder (a finished `tokclf train` run) to the Hub,
behind the same quality gate as `push_to_hub` in a training run. Registered through
tokclf.cli.main.EXTENSIONS; heavy imports stay inside the command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "publish",
        help="push a trained model folder to the Hugging Face Hub (quality-gated)",
        description=(
            "Create the repo USERNAME/NAME (private by default) and upload the model folder, unless the model "
            "already there has a higher validation F1 (minus --tolerance); --force-publish overrides. The token "
            "comes from --token, HF_TOKEN or `hf auth login`, "
            "and is never written anywhere. HF_ENDPOINT selects another Hub endpoint."
        ),
    )
    p.add_argument("--model", required=True, help="folder written by `tokclf train` (its --project-name)")
    p.add_argument("--username", help="Hub user or organisation (default: the run's username)")
    p.add_argument("--repo-name", help="repo name (default: the run's project_name, last part)")
    p.add_argument("--token", help="Hub token with write access (prefer HF_TOKEN: command lines show in `ps`)")
    p.add_argument("--private", action=argparse.BooleanOptionalAction, default=True,
                   help="create the repo private (default) or public; an existing repo keeps its visibility")
    p.add_argument("--force-publish", action="store_true", help="publish even if the quality gate says no")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="publish when new F1 >= published F1 - tolerance (0-1 scale: 0.01 = one F1 point)")
    p.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--retries", type=int, default=3, help="retries on 5xx/connection errors, with backoff (default 3)")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    from tokclf.core.errors import TokclfError
    from tokclf.core.params import hub_repo_id_problem
    from tokclf.publishing.hub import publish, read_json, resolve_token

    model_dir = Path(args.model).expanduser()
    saved = read_json(model_dir / "training_params.json")
    username = args.username or saved.get("username")
    if not username:
        raise TokclfError("--username is required (the run did not record one)", where="publish",
                          fix="tokclf publish --model DIR --username USER_OR_ORG", code="E8007")
    name = args.repo_name or Path(str(saved.get("project_name") or model_dir.resolve().name)).name
    problem = hub_repo_id_problem(username, name)
    if problem:
        raise TokclfError(problem, where="publish", fix="pass --username / --repo-name with valid names.", code="E8008")
    if not 0 <= args.tolerance <= 1:
        raise TokclfError(f"--tolerance {args.tolerance} is outside 0..1", where="publish",
                          fix="give the F1 drop allowed on the 0-1 scale, e.g. 0.01 for one point.", code="E8009")
    token = resolve_token(args.token)
    result = publish(
        model_dir, repo_id=f"{username}/{name}", token=token, private=args.private, tolerance=args.tolerance,
        force=args.force_publish, endpoint=args.endpoint, retries=max(0, args.retries),
    )
    print(json.dumps(result.to_dict(), indent=2))
    return 0
