"""The annotation-loop flow (flows/annotation.py) under prefect_test_harness (a real temporary
Prefect server) against a real Label Studio (the `labelstudio` fixture), on the tiny random BERT:
it trains on the first export and pre-annotates every task without a prediction; unchanged
annotations skip training but new tasks still get pre-annotations; changed annotations retrain (the
token then read from a Prefect Secret block); the token is written nowhere; a missing token fails
with a message naming the variable. Plus the deployment that prefect.yaml declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, make_ner_sentences, write_params  # tests/ is on sys.path
from test_annotation_loop import as_text

from tokclf.data.labelstudio_api import TOKEN_ENV, LabelStudioAuthError, LabelStudioClient

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytestmark = pytest.mark.timeout(1500)
EXPORT = "data/labelstudio/export.json"


def loop_project(root: Path, tiny_model_dir: Path) -> Path:
    """params.yaml of the tiny pipeline reading the export (one file: a seeded quarter becomes validation)."""
    root.mkdir(parents=True, exist_ok=True)
    write_params(root, tiny_model_dir, root / EXPORT)
    spec = yaml.safe_load((root / "params.yaml").read_text())
    spec["data"].update(data_path=EXPORT, valid_split=None, validation_split_ratio=0.25)
    spec["train"].update(epochs=2)
    (root / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def files_containing(root: Path, needle: str) -> list[str]:
    data = needle.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


@pytest.mark.slow  # a Label Studio and a Prefect server, four flow runs, two trainings
def test_annotation_loop_flow(harness, labelstudio, tiny_model_dir, tmp_path, monkeypatch):
    from prefect.blocks.system import Secret

    from flows.annotation import annotation_loop_flow
    from tokclf.pipeline import annotation_loop
    from tokclf.pipeline.paths import METRICS, PipelinePaths, load_params

    root = loop_project(tmp_path / "project", tiny_model_dir)
    client = LabelStudioClient(labelstudio.url, labelstudio.token)
    from tokclf.inference.preannotate import ner_label_config

    project = client.create_project("flow loop", ner_label_config(["PER", "ORG", "LOC"]))
    texts = [as_text(s) for s in make_ner_sentences(24, seed=11)]
    ids = client.import_tasks(project, [{"data": {"text": t}} for t, _ in texts])
    for task_id, (_, gold) in zip(ids[:20], texts[:20]):
        client.create_annotation(task_id, gold)
    run = {"labelstudio_url": labelstudio.url, "project_id": project, "workdir": str(root)}

    # No token where the flow looks for it: refused before anything is written.
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(LabelStudioAuthError, match=TOKEN_ENV):
        annotation_loop_flow(**run)
    assert not (root / EXPORT).exists()

    monkeypatch.setenv(TOKEN_ENV, labelstudio.token)
    first = annotation_loop_flow(**run)
    assert first["trained"] is True and "no successful annotation-loop run" in first["reason"]
    assert first["annotated"] == 20 and (root / EXPORT).is_file() and (root / METRICS).is_file()
    assert first["publish"]["status"] == "skipped"  # push_to_hub is off: the local model is the one in use
    assert first["preannotated"]["pushed"] == 24 and client.tasks_without_predictions(project) == []
    version = first["preannotated"]["model_version"]
    assert version.startswith("tiny@") and first["run_id"].startswith(version.split("@")[1])
    (stored,) = client.predictions(ids[23])
    assert stored["model_version"] == version

    # Same annotations: no training; nothing left to pre-annotate.
    again = annotation_loop_flow(**run)
    assert again["trained"] is False and "annotations unchanged" in again["reason"]
    assert again["preannotated"]["pushed"] == 0

    # New tasks, still the same annotations: no training, but the new tasks get pre-annotations.
    new_ids = client.import_tasks(project, [{"data": {"text": as_text(s)[0]}} for s in make_ner_sentences(3, seed=12)])
    more = annotation_loop_flow(**run)
    assert more["trained"] is False and sorted(more["preannotated"]["task_ids"]) == sorted(new_ids)
    assert {p["model_version"] for i in new_ids for p in client.predictions(i)} == {version}

    # The command line a user runs (`python -m flows annotate`), against the same Prefect server.
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(harness)}
    cli = [sys.executable, "-m", "flows", "annotate", "--labelstudio-url", labelstudio.url, "--project-id",
           str(project), "--workdir", str(root)]
    proc = subprocess.run([*cli, "--token-env", "NO_SUCH_TOKEN_VAR"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 2 and "NO_SUCH_TOKEN_VAR is not set" in proc.stderr, proc.stderr[-3000:]
    proc = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert out["trained"] is False and out["preannotated"]["pushed"] == 0 and out["annotated"] == 20

    # Annotators label more: retrain, this time with the token from a Prefect Secret block.
    for task_id, (_, gold) in zip(ids[20:], texts[20:]):
        client.create_annotation(task_id, gold)
    Secret(value=labelstudio.token).save("labelstudio-token", overwrite=True)
    monkeypatch.delenv(TOKEN_ENV)
    changed = annotation_loop_flow(**run, labelstudio_token_secret="labelstudio-token")
    assert changed["trained"] is True and "annotations changed" in changed["reason"] and changed["annotated"] == 24
    assert changed["run_id"] != first["run_id"]

    # The quality gate: a model the gate refused to publish does not pre-annotate.
    paths = PipelinePaths.for_params(load_params(root / "params.yaml"), root)
    refused = {"status": "skipped", "reason": "not published: F1 0.1000 < 0.9000"}
    assert annotation_loop.preannotation_model(paths, refused, push_to_hub=True)[0] is None
    assert annotation_loop.preannotation_model(paths, {"status": "published"}, push_to_hub=True)[0] == paths.model

    # The token is nowhere on disk: project, results, Prefect's home.
    assert files_containing(root, labelstudio.token) == []
    assert files_containing(Path(harness), labelstudio.token) == []
    client.close()


def test_export_target_must_be_a_json_file(tmp_path):
    from tokclf.core.errors import TokclfError
    from tokclf.pipeline.annotation_loop import export_target

    assert export_target(str(tmp_path / "a.json"), "/elsewhere") == tmp_path / "a.json"
    assert export_target("data/a.json", tmp_path) == tmp_path / "data" / "a.json"  # under the project root
    for bad in (str(tmp_path), str(tmp_path / "export.jsonl"), [str(tmp_path / "a.json")]):
        with pytest.raises(TokclfError, match="data_path"):
            export_target(bad, tmp_path)


def test_annotations_key_ignores_predictions_and_timestamps():
    from tokclf.pipeline.keys import annotations_key

    task = {"id": 3, "data": {"text": "John works"}, "predictions": [7], "updated_at": "2026-01-01",
            "annotations": [{"id": 1, "result": [{"value": {"start": 0, "end": 4, "labels": ["PER"]}}],
                             "was_cancelled": False, "updated_at": "2026-01-01"}]}
    same = {**task, "predictions": [7, 8], "updated_at": "2026-02-02", "total_predictions": 2}
    assert annotations_key([task]) == annotations_key([same])
    edited = {**task, "annotations": [{**task["annotations"][0], "result": []}]}
    cancelled = {**task, "annotations": [{**task["annotations"][0], "was_cancelled": True}]}
    other = {**task, "id": 4}
    keys = {annotations_key([t]) for t in (task, edited, cancelled, other)} | {annotations_key([])}
    assert len(keys) == 5


def test_annotation_loop_deployment(tmp_path):
    from flows.serve import build_deployments

    (deployment,) = build_deployments(REPO / "prefect.yaml", workdir=tmp_path, only=["annotation-loop"])
    assert deployment.entrypoint == "flows/annotation.py:annotation_loop_flow"
    assert deployment.parameters["labelstudio_token_env"] == TOKEN_ENV
    assert deployment.parameters["workdir"] == str(tmp_path.resolve())
    assert "token" not in {k for k in deployment.parameters if not k.startswith("labelstudio_token")}
    (schedule,) = deployment.schedules
    assert schedule.active is False and schedule.schedule.cron == "0 * * * *"  # hourly once switched on
