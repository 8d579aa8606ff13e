"""`dvc repro` after the train stage was killed (the whole process group, as a preempted machine
or a CI timeout does) resumes from the run folder's checkpoints: the run folder is a sibling of the
stage's output, so DVC's removal of outputs before a stage runs does not delete it. The same for a
SIGKILLed run of the Prefect retraining flow: nothing publishable left, the next run resumes. A
SIGKILL of the Prefect train task's training process (an OOM kill) is retried by the task and the
retry resumes; a SIGTERM of the flow run reaches the training process, which checkpoints."""

from __future__ import annotations

import json
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
    """A SIGKILL of the whole flow run (its process group; the training process, in a session of
    its own, dies with its launcher: tokclf.training.checkpoints.die_with_launcher): no task retry
    can happen in a dead process. What must hold instead: the killed run leaves nothing a publisher
    could take, and the next run of the retraining flow (the deployment's next trigger) sees no
    finished run, trains, and resumes from the checkpoints."""
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


# --- the Prefect train task's training process --------------------------------------------------------
TOKEN = "hf_tokclfTestSecret0123456789"  # a fake Hub token: it must show up nowhere but the child's env


def _retry_project(root: Path, tiny_model_dir: Path, ner_jsonl_dir: Path) -> Path:
    import shutil

    from conftest import write_params

    root.mkdir()
    shutil.copytree(ner_jsonl_dir, root / "source")
    # A checkpoint after every step; 12 steps an epoch, 72 in all.
    config = write_params(root, tiny_model_dir, root / "source", checkpoint_minutes=0.00001)
    spec = yaml.safe_load(config.read_text())
    spec["train"].update(epochs=6, batch_size=4)
    spec["publish"]["token"] = TOKEN
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def _steps(checkpoints: Path) -> list[int]:
    try:
        return sorted(int(p.name.split("-")[1]) for p in checkpoints.iterdir() if p.name.startswith("checkpoint-"))
    except FileNotFoundError:
        return []


def _flow_runs_train_task(workdir: Path) -> list:
    """The train task runs of the flow runs with this workdir (from the Prefect server)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs() if r.parameters.get("workdir") == str(workdir)]
        assert runs, "no flow run recorded for " + str(workdir)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs])))
        return [t for t in tasks if t.task_key.startswith("train")]


def _flow_run_with_training(root: Path, harness: Path, log_path: Path) -> tuple[subprocess.Popen, int]:
    """`python -m flows run` on `root` in a session of its own (output to `log_path`), once the
    train task has started its training process, and that process's pid (from the task's log
    line). The caller kills the session if the test ends before it."""
    import re
    import sys

    from conftest import wait_until
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(harness)}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flows", "run", "--config", "params.yaml", "--workdir", str(root)],
                                cwd=Path(__file__).parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        started = wait_until(lambda: re.search(r"training process started \(pid (\d+)\)", log_path.read_text()),
                             proc, timeout=600)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, int(started.group(1))


def test_sigkilled_training_process_is_retried_by_the_task_and_resumes(harness, tiny_model_dir, ner_jsonl_dir,
                                                                        tmp_path):
    """The out-of-memory killer's way: SIGKILL to the training process alone, after epoch 1. The
    train task fails with the signal's name, Prefect retries it, the retry resumes from the newest
    checkpoint, and the flow completes with the model and metrics an uninterrupted run gives (same
    optimizer steps, same scores). The Hub token in the parameters reaches the training process
    through its environment only: not its command line, its parameters file, or any log."""
    import re

    from conftest import wait_until

    from flows.training import training_flow
    from tokclf.pipeline.paths import METRICS, PUBLISH

    root = _retry_project(tmp_path / "project", tiny_model_dir, ner_jsonl_dir)
    model = root / "outputs" / "tiny"
    checkpoints = model.parent / ".tiny.run" / "checkpoints"
    log_path = tmp_path / "flow.log"
    proc, child = _flow_run_with_training(root, harness, log_path)
    try:
        # The token: in the child's environment, not on its command line nor in its parameters file.
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        assert TOKEN.encode() not in b" ".join(cmdline)
        assert f"HF_TOKEN={TOKEN}".encode() in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        config = Path(cmdline[cmdline.index(b"--config") + 1].decode())
        assert TOKEN not in config.read_text() and oct(config.stat().st_mode & 0o777) == "0o600"

        wait_until(lambda: any(s >= 14 for s in _steps(checkpoints)), proc, timeout=600)  # past epoch 1 (12)
        os.kill(child, signal.SIGKILL)
        assert not model.exists() and not (root / PUBLISH).exists()  # nothing to publish from a half run
        assert proc.wait(timeout=900) == 0, log_path.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = log_path.read_text()
    assert "the training process died of signal SIGKILL (9)" in out, out[-4000:]
    assert "attempt 2, resuming from the newest checkpoint" in out
    resumed = re.search(r"resuming from \S*checkpoint-(\d+) \(step (\d+)\)", out)
    assert resumed and 14 <= int(resumed.group(1)) < 72, out[-4000:]
    assert TOKEN not in out
    [train_run] = _flow_runs_train_task(root)
    assert train_run.state.is_completed() and train_run.run_count == 2  # failed once, retried once
    for path in root.rglob("*"):  # results, reports, the model folder: no token (params.yaml holds it)
        if path.is_file() and path.name != "params.yaml":
            assert TOKEN.encode() not in path.read_bytes(), path

    # Published: the model folder is complete and the flow went on to evaluate and publish it.
    assert (model / "model.safetensors").is_file() and not checkpoints.parent.exists()
    assert json.loads((root / PUBLISH).read_text())["status"] == "skipped"  # push_to_hub is false here
    # The same as an uninterrupted run of the same flow.
    reference = _retry_project(tmp_path / "reference", tiny_model_dir, ner_jsonl_dir)
    training_flow(workdir=str(reference))
    trained, expected = (json.loads((r / "outputs" / "tiny" / "metrics.json").read_text()) for r in (root, reference))
    # Early stopping ends both at the same step (48: F1 1.0 from epoch 2 on, patience 2 epochs).
    assert trained["train"]["steps"] == expected["train"]["steps"] > int(resumed.group(1))
    got, want = (json.loads((r / METRICS).read_text()) for r in (root, reference))
    for split in ("validation", "test"):
        for key in ("f1", "precision", "recall", "accuracy"):
            assert round(got[split][key], 4) == round(want[split][key], 4), (split, key)


def test_sigterm_of_the_flow_run_reaches_the_training_process_which_checkpoints(harness, tiny_model_dir,
                                                                                ner_jsonl_dir, tmp_path):
    """A cancelled flow run (the Prefect runner sends SIGTERM to its process group; the training
    process is in a session of its own, so only the train task's forwarded SIGTERM reaches it, once):
    the training finishes its step, writes a checkpoint, exits 143, and is gone when the flow run's
    process has exited. Nothing publishable is left."""
    import re

    from conftest import wait_until

    root = _retry_project(tmp_path / "project", tiny_model_dir, ner_jsonl_dir)
    model = root / "outputs" / "tiny"
    checkpoints = model.parent / ".tiny.run" / "checkpoints"
    log_path = tmp_path / "flow.log"
    proc, child = _flow_run_with_training(root, harness, log_path)
    try:
        wait_until(lambda: any(s >= 3 for s in _steps(checkpoints)), proc, timeout=600)
        os.killpg(proc.pid, signal.SIGTERM)  # as the runner cancels: the flow run's whole group
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = log_path.read_text()
    assert proc.returncode != 0
    assert "the training process stopped (exit status 143)" in out, out[-4000:]
    stopped = re.search(r"interrupted at step (\d+) of 72; run the same command again to resume", out)
    assert stopped, out[-4000:]
    assert int(stopped.group(1)) in _steps(checkpoints)  # the checkpoint of the step it stopped at
    assert not Path(f"/proc/{child}").exists()  # no orphan training on
    assert not model.exists() and not (root / "reports" / "metrics.json").exists()
