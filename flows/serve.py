"""Serve the deployments declared in prefect.yaml from this process (no work pool, no worker).

    python -m flows serve [--workdir .] [--deployments prefect.yaml] [--only train]

Each entry of prefect.yaml's `deployments:` becomes a deployment of its flow with the same name,
description, parameters and schedules (cron + timezone; `TOKCLF_RETRAIN_CRON` overrides the cron
of the scheduled retrain). `workdir` defaults to this checkout, made absolute, so runs write to
its data/, reports/ and model folder. The process serves until Ctrl-C or SIGTERM (Prefect's
runner stops cleanly on both; `prefect worker start` in 3.9 ignores the first SIGTERM, which is
one reason the local route is `serve`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


CRON_ENV = "TOKCLF_RETRAIN_CRON"


def load_deployment_config(path: str | Path) -> list[dict[str, Any]]:
    """The `deployments:` list of a prefect.yaml."""
    import yaml

    from tokclf.core.errors import TokclfError

    p = Path(path)
    if not p.is_file():
        raise TokclfError(f"no deployment configuration at {p}", fix="run from the repository root or pass --deployments.", code="E9001")
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    deployments = raw.get("deployments") or []
    if not isinstance(deployments, list) or not deployments:
        raise TokclfError("no `deployments:` list", where=str(p), fix="declare the deployments as in the repo's prefect.yaml.", code="E9002")
    return deployments


def _flow_for(entrypoint: str, base: Path) -> Any:
    """The flow of a prefect.yaml entrypoint: `path/to/file.py:flow` (relative to the folder of
    prefect.yaml, as `prefect deploy` reads it) or `package.module:flow`."""
    from prefect.flows import load_flow_from_entrypoint

    file, _, name = entrypoint.rpartition(":")
    if file.endswith(".py"):
        path = Path(file)
        entrypoint = f"{path if path.is_absolute() else base / path}:{name}"
    return load_flow_from_entrypoint(entrypoint)


def build_deployments(config: str | Path = "prefect.yaml", *, workdir: str | Path = ".",
                      only: list[str] | None = None) -> list[Any]:
    """RunnerDeployments (for prefect.serve) from prefect.yaml; cron schedules as configured."""
    from prefect.schedules import Cron

    root = str(Path(workdir).expanduser().resolve())
    out = []
    for entry in load_deployment_config(config):
        if only and entry["name"] not in only:
            continue
        flow = _flow_for(entry["entrypoint"], Path(config).expanduser().resolve().parent)
        parameters = dict(entry.get("parameters") or {})
        if "workdir" in flow.parameters.properties:
            wd = Path(str(parameters.get("workdir", "."))).expanduser()
            parameters["workdir"] = str(wd if wd.is_absolute() else (Path(root) / wd).resolve())
        schedules = []
        for spec in entry.get("schedules") or []:
            # The override is the scheduled retrain's (not every deployment's: the annotation loop has its own).
            retrain = entry["entrypoint"].endswith(":retraining_flow")
            cron = (os.environ.get(CRON_ENV) if retrain else None) or spec.get("cron")
            if cron:
                schedules.append(Cron(cron, timezone=spec.get("timezone") or "UTC", active=spec.get("active", True)))
        out.append(flow.to_deployment(
            name=entry["name"], description=entry.get("description"), parameters=parameters,
            schedules=schedules or None, tags=entry.get("tags") or ["tokclf"],
        ))
    return out


def serve_deployments(config: str | Path = "prefect.yaml", *, workdir: str | Path = ".",
                      only: list[str] | None = None, limit: int | None = 1) -> None:
    """Serve until interrupted; `limit` flow runs at a time (one training at a time by default)."""
    from prefect import serve

    serve(*build_deployments(config, workdir=workdir, only=only), limit=limit)
