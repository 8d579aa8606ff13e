"""`dvc repro` after the train stage was killed (the whole process group, as a preempted machine
or a CI timeout does) resumes from the run folder's checkpoints: the run folder is a sibling of the
stage's output, so DVC's removal of outputs before a stage runs does not delete it. The same for a
SIGKILLed run of the Prefect retraining flow: nothing publishable left, the next run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_dvc import clone, env, sh  # noqa: F401 - fixtures (tests/ is on sys.path)

pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


def test_dvc_repro_after_a_killed_train_stage_resumes(clone, env):  # noqa: F811
    sh(["dvc", "repro", "tokenize"], clone, env)
    spec = yaml.safe_load((clone / "params.yaml").read_text())
    # A checkpoint after every step, and enough steps to stop in the middle.
    spec["train"].update(epochs=4, batch_size=4, checkpoint_minutes=0.00001)
    (clone / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    project = clone / spec["train"]["project_name"]
    checkpoints = project.parent / f".{project.name}.run" / "checkpoints"

    with open(clone / "killed.log", "w") as log:
        proc = subprocess.Popen(["dvc", "repro", "train"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 600
    while not (checkpoints.is_dir() and any(p.name.startswith("checkpoint-") and int(p.name.split("-")[1]) >= 3
                                            for p in checkpoints.iterdir())):
        assert proc.poll() is None, (clone / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage's `tokclf stage train` under it
    proc.wait(timeout=60)
    assert not project.exists()

    out = sh(["dvc", "repro", "train"], clone, env)
    assert "resuming from" in out and str(checkpoints) in out, out[-3000:]
    assert (project / "model.safetensors").is_file() and not (project / "checkpoints").exists()
    assert not checkpoints.parent.exists()  # the run folder became the stage's output
    assert "train" not in sh(["dvc", "status", "train"], clone, env, stdout_only=True).replace("up to date", "")


def test_killed_retraining_flow_run_publishes_nothing_and_the_next_run_resumes(harness, tiny_model_dir, ner_jsonl_dir,
                                                                               tmp_path):
    """The Prefect train task runs training in the flow run's own process (a worker thread), so a
    SIGKILL of the training is a SIGKILL of the flow run: no task retry can catch it (retries cover
    exceptions inside the process, tasks.retry_crashed_training). What must hold instead: the killed
    run leaves nothing a publisher could take, and the next run of the retraining flow (the
    deployment's next trigger) sees no finished run, trains, and resumes from the checkpoints."""
    import shutil
    import sys

    from conftest import write_params
    from prefect.settings import PREFECT_API_URL

    from tokclf.pipeline.paths import METRICS, PUBLISH

    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(ner_jsonl_dir, root / "source")
    config = write_params(root, tiny_model_dir, root / "source", checkpoint_minutes=0.00001)
    spec = yaml.safe_load(config.read_text())
    spec["train"].update(epochs=6, batch_size=4)  # 12 steps an epoch, a checkpoint after each
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    model = root / "outputs" / "tiny"
    checkpoints = model.parent / ".tiny.run" / "checkpoints"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(harness)}
    cmd = [sys.executable, "-m", "flows", "retrain", "--config", "params.yaml", "--workdir", str(root),
           "--no-record-with-dvc"]

    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=Path(__file__).parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 600
    while not (checkpoints.is_dir() and any(p.name.startswith("checkpoint-") and int(p.name.split("-")[1]) >= 14
                                            for p in checkpoints.iterdir())):  # past the first epoch (12 steps)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # Nothing publishable: no model folder, no evaluation metrics, no publish record.
    assert not model.exists() and not (root / METRICS).exists() and not (root / PUBLISH).exists()

    done = subprocess.run(cmd, cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "retraining:" in out and "resuming from" in out and str(checkpoints) in out, out[-3000:]
    assert (model / "model.safetensors").is_file() and (root / METRICS).is_file()
    assert not checkpoints.parent.exists()
