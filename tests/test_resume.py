"""Interrupted runs resume with the same result: real `tokclf train` processes, real signals.

A small real subset (CoNLL-2003, 160 sentences per split) on the tiny random BERT. Processes are
stopped when a checkpoint file appears (polling the run folder, with a timeout), never after a
fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_data, wait_until

STEPS_PER_EPOCH = 20  # 160 sentences / 8
EPOCHS = 2


def train_cmd(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tokclf.cli", "train", "--data-path", str(shared_data("conll2003")),
        "--model", str(model), "--project-name", str(out), "--valid-split", "valid", "--max-samples", "160",
        "--epochs", str(EPOCHS), "--batch-size", "8", "--max-seq-length", "64", "--stride", "8", "--lr", "5e-3",
        "--logging-steps", "10", "--seed", "7", *extra,
    ]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent)


def checkpoint_steps(out: Path) -> list[int]:
    folder = out.parent / f".{out.name}.run" / "checkpoints"
    try:
        return sorted(int(p.name.split("-")[1]) for p in folder.iterdir() if p.name.startswith("checkpoint-"))
    except FileNotFoundError:
        return []


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, ok, timeout: float = 300) -> int:
    """Poll the run folder until a complete checkpoint whose step satisfies `ok` exists."""
    return wait_until(lambda: [s for s in checkpoint_steps(out) if ok(s)], proc, timeout, poll=0.005)[-1]


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def rounded(m: dict) -> dict:
    keep = ("precision", "recall", "f1", "accuracy")
    return {split: {k: round(m[split][k], 4) for k in keep} for split in ("validation", "test")}


@pytest.mark.slow
def test_interrupted_and_killed_run_resumes_to_the_same_result(tiny_model_dir, tmp_path):
    shared_data("conll2003")
    # The uninterrupted run (default checkpoint_minutes: checkpoints at epoch ends only).
    base = tmp_path / "base"
    done = subprocess.run(train_cmd(tiny_model_dir, base), capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "model"
    every_step = ("--checkpoint-minutes", "0.00001")
    # 1. Ctrl-C (SIGINT) after a few steps: the step finishes, a checkpoint is written, exit 130.
    proc = start(train_cmd(tiny_model_dir, out, *every_step), tmp_path / "run1.log")
    wait_for_checkpoint(proc, out, lambda s: s >= 3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    lines = (tmp_path / "run1.log").read_text().replace("\r", "\n").splitlines()
    said = [line for line in lines if line.startswith("interrupted")]
    assert len(said) == 1, lines[-20:]
    last = said[0]
    assert last.startswith("interrupted at step ") and last.endswith(
        f"of {STEPS_PER_EPOCH * EPOCHS}; run the same command again to resume"), last
    stopped_at = int(last.split()[3])
    assert stopped_at in checkpoint_steps(out)
    assert not out.exists()

    # 2. The same command with a changed training parameter: refused, naming it and the way out.
    changed = subprocess.run(train_cmd(tiny_model_dir, out, *every_step, "--lr", "1e-3"),
                             capture_output=True, text=True, cwd=tmp_path)
    assert changed.returncode == 2
    assert "lr: 0.005 -> 0.001" in changed.stderr and "--resume never" in changed.stderr
    assert stopped_at in checkpoint_steps(out)  # the refused run left the checkpoints alone

    # 3. Rerun; SIGKILL in the middle of the second epoch (no chance to clean up or save).
    proc = start(train_cmd(tiny_model_dir, out, *every_step), tmp_path / "run2.log")
    killed_after = wait_for_checkpoint(proc, out, lambda s: STEPS_PER_EPOCH + 3 <= s < 2 * STEPS_PER_EPOCH - 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    log2 = (tmp_path / "run2.log").read_text()
    assert f"resuming from {out.parent / '.model.run' / 'checkpoints' / f'checkpoint-{stopped_at}'}" in log2
    assert not out.exists()

    # 4. Rerun to the end: the same metrics and the same number of optimizer steps.
    newest = out.parent / ".model.run" / "checkpoints" / f"checkpoint-{checkpoint_steps(out)[-1]}"
    progress = json.loads((newest / "tokclf_checkpoint.json").read_text())["progress"]  # of runs 1 and 2
    assert progress["steps"] == checkpoint_steps(out)[-1] and progress["runtime_s"] > 0
    final = subprocess.run(train_cmd(tiny_model_dir, out, *every_step), capture_output=True, text=True, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resuming from" in final.stderr
    resumed_step = int(final.stderr.split("resuming from ")[1].split("checkpoint-")[1].split()[0])
    assert resumed_step >= killed_after
    got, want = metrics(out), metrics(base)
    assert got["train"]["steps"] == want["train"]["steps"] == STEPS_PER_EPOCH * EPOCHS
    assert rounded(got) == rounded(want)
    assert got["best_checkpoint"] == want["best_checkpoint"]
    # The training loss and time cover the whole run (carried in the checkpoints), not the last of
    # its three processes: the loss is the uninterrupted run's, up to float summation order, and the
    # time adds the last process's own (the Trainer's train_runtime, measured inside ours) to the
    # time the checkpoint it resumed from recorded for the processes before it.
    assert resumed_step == progress["steps"]
    assert got["train"]["loss"] == pytest.approx(want["train"]["loss"], rel=1e-5)
    log = json.loads((out / "training_log.json").read_text())
    last_process = [e["train_runtime"] for e in log if "train_runtime" in e][-1]
    assert got["train"]["runtime_s"] >= progress["runtime_s"] + last_process - 0.02
    assert got["train"]["cpu_s"] > progress["cpu_s"]
    # On CPU every kernel used here is deterministic: the weights are the same bits.
    assert (out / "model.safetensors").read_bytes() == (base / "model.safetensors").read_bytes()
    # Nothing left beside the output: the run folder became the model folder.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
def test_resume_never_starts_fresh_and_a_damaged_checkpoint_falls_back(tiny_model_dir, tmp_path):
    shared_data("conll2003")
    out = tmp_path / "model"
    every_step = ("--checkpoint-minutes", "0.00001", "--save-total-limit", "3", "--epochs", "1")
    proc = start(train_cmd(tiny_model_dir, out, *every_step), tmp_path / "run1.log")
    wait_for_checkpoint(proc, out, lambda s: s >= 8)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    steps = checkpoint_steps(out)
    assert len(steps) == 3  # save_total_limit counts complete checkpoints (the best is among them)
    newest = out.parent / ".model.run" / "checkpoints" / f"checkpoint-{steps[-1]}"
    # Truncate the newest checkpoint's weights (a disk that filled up, a copy cut short).
    weights = newest / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.truncate(os.path.getsize(weights) // 2)
    proc = subprocess.run(train_cmd(tiny_model_dir, out, *every_step), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipping damaged checkpoint" in proc.stderr and "truncated" in proc.stderr
    assert f"checkpoint-{steps[-2]} (step {steps[-2]})" in proc.stderr
    first = metrics(out)

    # --resume never: a fresh run even though a finished model is there (no checkpoints to use).
    again = subprocess.run(train_cmd(tiny_model_dir, out, *every_step, "--resume", "never"),
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and "resuming from" not in again.stderr
    assert rounded(metrics(out)) == rounded(first)


@pytest.mark.slow
def test_resumed_run_continues_the_same_mlflow_run(tiny_model_dir, ner_jsonl_dir, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "tokclf.cli", "train", "--data-path", str(ner_jsonl_dir), "--model", str(tiny_model_dir),
           "--project-name", str(out), "--valid-split", "validation", "--epochs", "8", "--batch-size", "4",
           "--max-seq-length", "32", "--stride", "4", "--log", "mlflow", "--checkpoint-minutes", "0.00001"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(tmp_path / "run1.log", "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    wait_for_checkpoint(proc, out, lambda s: s >= 14)  # past the first epoch's evaluation (12 steps)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    run_file = json.loads((out.parent / ".model.run" / "run.json").read_text())
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tokclf").experiment_id])
    assert [r.info.run_id for r in runs] == [run_file["mlflow_run_id"]]  # one run, continued
    evals = client.get_metric_history(runs[0].info.run_id, "eval_f1")
    assert len(evals) == 8  # one per epoch, before and after the interruption


@pytest.mark.slow
def test_data_deleted_between_runs_is_a_clear_error_and_keeps_the_checkpoints(tiny_model_dir, ner_jsonl_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(ner_jsonl_dir, data)
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "tokclf.cli", "train", "--data-path", str(data), "--model", str(tiny_model_dir),
           "--project-name", str(out), "--valid-split", "validation", "--epochs", "8", "--batch-size", "4",
           "--max-seq-length", "32", "--stride", "4", "--checkpoint-minutes", "0.00001"]
    with open(tmp_path / "run1.log", "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
    wait_for_checkpoint(proc, out, lambda s: s >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    kept = checkpoint_steps(out)
    (data / "train.jsonl").rename(tmp_path / "train.jsonl")
    gone = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr
    assert str(data) in gone.stderr and "train" in gone.stderr, gone.stderr[-2000:]
    assert checkpoint_steps(out) == kept and not out.exists()
    (tmp_path / "train.jsonl").rename(data / "train.jsonl")
    back = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert back.returncode == 0 and f"checkpoint-{kept[-1]} (step {kept[-1]})" in back.stderr
