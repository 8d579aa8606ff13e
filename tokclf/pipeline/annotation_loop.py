"""The annotate -> train -> pre-annotate loop's own steps (the Prefect flow `flows/annotation.py`
chains them with the pipeline's stages):

1. `pull_export`: the project's Label Studio JSON export -> the params' `data_path` file (written
   atomically; annotated tasks only), with its content key (`tokclf.pipeline.keys.annotations_key`).
2. `loop_decision`: train only when that key differs from the one recorded by the last successful
   loop run (`ANNOTATION_RECORD`, written by `record_loop_run` after train, evaluate and publish got
   through, and only valid while the model folder still holds that run's model).
3. `preannotation_model`: whether fresh pre-annotations may come from the model folder: yes when the
   run published the model or publishing is off; no when the quality gate refused it.

No token passes through here: the caller hands in a connected `LabelStudioClient`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.fileio import write_json
from tokclf.data.labelstudio_api import LabelStudioClient, annotated_tasks
from tokclf.pipeline.keys import annotations_key
from tokclf.pipeline.paths import PipelinePaths
from tokclf.pipeline.retrain import last_successful_run

ANNOTATION_RECORD = "reports/annotation_loop.json"  # under the project root, beside metrics.json
EXPORT_SUFFIXES = (".json",)


def record_path(paths: PipelinePaths) -> Path:
    return paths.root / ANNOTATION_RECORD


def export_target(data_path: str | list[str], root: str | Path) -> Path:
    """The file the export is written to: the params' data_path, which must name one .json file
    (relative: under the project root, as the pipeline reads it once it exists)."""
    target = Path(data_path).expanduser() if isinstance(data_path, str) else None
    if target is not None and not target.is_absolute():
        target = Path(root).expanduser().resolve() / target
    if target is None or target.suffix.lower() not in EXPORT_SUFFIXES or target.is_dir():
        raise TokclfError(
            f"data_path {data_path!r} is not a .json file, so the Label Studio export has nowhere to go",
            where="data_path", fix="set data_path to a file such as data/labelstudio/export.json in params.yaml.", code="E7001",
        )
    return target


def pull_export(client: LabelStudioClient, project: int, data_path: str | list[str], root: str | Path) -> dict[str, Any]:
    """Export the project's annotated tasks (Label Studio JSON) into data_path; counts and key."""
    target = export_target(data_path, root)  # checked before asking the server
    export = client.export(project)
    tasks = annotated_tasks(export)  # tasks whose every annotation was cancelled train nothing
    if tasks:
        write_json(target, tasks)
    return {"path": str(target), "exported": len(export), "annotated": len(tasks), "key": annotations_key(tasks),
            "project": int(project), "url": client.url}


def last_loop_run(paths: PipelinePaths) -> dict[str, Any] | None:
    """The record of the last successful loop run, while the model folder still holds its model."""
    try:
        record = json.loads(record_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run = last_successful_run(paths)
    if run is None or run.get("run_id") != record.get("run_id"):
        return None
    return record


def loop_decision(pulled: dict[str, Any], paths: PipelinePaths) -> tuple[bool, str]:
    """(train?, why) for an export `pull_export` returned."""
    if not pulled["annotated"]:
        return False, f"no annotated tasks in project {pulled['project']} yet: nothing to train on"
    last = last_loop_run(paths)
    if last is None:
        return True, f"no successful annotation-loop run recorded in {record_path(paths)}: training"
    if last.get("annotations_key") != pulled["key"]:
        return True, (f"annotations changed since the last successful run of {last.get('finished_at')} "
                      f"({last.get('annotated')} -> {pulled['annotated']} annotated tasks, key "
                      f"{str(last.get('annotations_key'))[:12]} -> {pulled['key'][:12]}): training")
    return False, (f"annotations unchanged since the last successful run of {last.get('finished_at')} "
                   f"({pulled['annotated']} annotated tasks, key {pulled['key'][:12]}): training skipped")


def record_loop_run(paths: PipelinePaths, pulled: dict[str, Any], run_id: str | None,
                    publish: dict[str, Any]) -> dict[str, Any]:
    """Write the record the next `loop_decision` compares with (no token: URL, project, counts, key)."""
    record = {
        "annotations_key": pulled["key"], "annotated": pulled["annotated"], "project": pulled["project"],
        "url": pulled["url"], "run_id": run_id, "publish_status": publish.get("status"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(record_path(paths), record)
    return record


def preannotation_model(paths: PipelinePaths, publish: dict[str, Any] | None,
                        push_to_hub: bool) -> tuple[Path | None, str]:
    """(model folder to pre-annotate with, or None; why). `publish`: this run's publish result
    (None when the run did not train, the model folder then holds the last successful run's)."""
    if last_successful_run(paths) is None:
        return None, f"no trained model in {paths.model} yet: no pre-annotations"
    if publish is not None and push_to_hub and publish.get("status") != "published":
        return None, f"the new model was not published ({publish.get('reason')}): no pre-annotations from it"
    return paths.model, f"pre-annotating with {paths.model}"


def model_version(paths: PipelinePaths) -> str:
    """What Label Studio shows as the predictions' model version: the model folder's name and run id."""
    run = last_successful_run(paths) or {}
    return f"{paths.model.name}@{str(run.get('run_id') or 'unknown')[:12]}"
