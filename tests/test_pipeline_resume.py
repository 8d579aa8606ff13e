"""`dvc repro` after the train stage was killed (the whole process group, as a preempted machine
or a CI timeout does) resumes from the run folder's checkpoints: the run folder is a sibling of the
stage's output, so DVC's removal of outputs before a stage runs does not delete it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

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
