"""Faults at the edges of a run, injected into real `tokclf train` processes: SIGKILL while a
checkpoint is being written, a signal while the finished model folder is moved into place, a full
output disk (a real small tmpfs). The tests' tiny NER corpus and the tiny random BERT; processes
are synchronised on files appearing (polled with a timeout), never on sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EPOCHS = 3
STEPS = EPOCHS * 12  # 48 train sentences / batch 4


def train_cmd(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tokclf.cli", "train", "--data-path", str(data), "--model", str(model),
            "--project-name", str(out), "--valid-split", "validation", "--epochs", str(EPOCHS), "--batch-size", "4",
            "--max-seq-length", "32", "--stride", "4", "--seed", "11", *extra]


EVERY_STEP = ("--checkpoint-minutes", "0.00001")


def run_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.run"


def complete_steps(out: Path) -> list[int]:
    folder = run_folder(out) / "checkpoints"
    try:
        return sorted(int(p.name.split("-")[1]) for p in folder.iterdir() if p.name.startswith("checkpoint-"))
    except FileNotFoundError:
        return []


def partial_checkpoints(out: Path) -> list[str]:
    try:
        return [p.name for p in (run_folder(out) / "checkpoints" / ".partial").iterdir()]
    except FileNotFoundError:
        return []


def rounded(m: dict) -> dict:
    keep = ("precision", "recall", "f1", "accuracy")
    return {split: {k: round(m[split][k], 4) for k in keep} for split in ("validation", "test")}


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, ner_jsonl_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base")
    done = subprocess.run(train_cmd(tiny_model_dir, ner_jsonl_dir, root / "model"), capture_output=True, text=True,
                          cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "model"


def kill_during_a_checkpoint_write(cmd: list[str], out: Path, log: Path, timeout: float = 300) -> bool:
    """Start `cmd`, SIGKILL it the moment `checkpoints/.partial/` holds a checkpoint being written
    (polled without sleeping: a tiny checkpoint takes milliseconds). True when the kill landed
    mid-write (the half-written checkpoint is still in `.partial`); False when the write had
    finished in between, or the run ended first."""
    partial = run_folder(out) / "checkpoints" / ".partial"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent)
    deadline = time.monotonic() + timeout
    try:
        # After the first complete checkpoint: the kill must leave an earlier one to fall back to.
        while not (complete_steps(out) and partial.is_dir() and any(partial.iterdir())):
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint write seen within the timeout")
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    return bool(partial_checkpoints(out))


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_resumes_from_the_previous_one(tiny_model_dir, ner_jsonl_dir, uninterrupted,
                                                                          tmp_path):
    out = tmp_path / "model"
    cmd = train_cmd(tiny_model_dir, ner_jsonl_dir, out, *EVERY_STEP)
    for attempt in range(5):  # each attempt resumes; one whose kill came after the rename retries
        if kill_during_a_checkpoint_write(cmd, out, tmp_path / f"killed{attempt}.log"):
            break
        assert not out.exists(), "the run finished before a kill landed during a write"
    else:
        pytest.fail("five kills all landed after the checkpoint's rename")
    half = partial_checkpoints(out)
    before = complete_steps(out)
    # The half-written checkpoint is not under a checkpoint name, so it can't be mistaken for one.
    assert half and before and int(half[0].split("-")[1]) > before[-1]

    final = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"removing a half-written checkpoint ({half[0]})" in final.stderr
    assert f"checkpoint-{before[-1]} (step {before[-1]})" in final.stderr  # the previous complete one
    assert not run_folder(out).exists()  # the half-written checkpoint cleaned with the run folder
    got, want = metrics(out), metrics(uninterrupted)
    assert got["train"]["steps"] == want["train"]["steps"] == STEPS
    assert rounded(got) == rounded(want)
    assert (out / "model.safetensors").read_bytes() == (uninterrupted / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_a_signal_while_the_model_moves_into_place_does_not_undo_the_run(tiny_model_dir, ner_jsonl_dir,
                                                                           uninterrupted, tmp_path):
    # SIGTERM the moment the finished folder appears at the output path: the rename is done (or
    # in progress, signals held), and the run must count as finished, exit 0: "interrupted" would
    # make a user or scheduler rerun it, and the rerun, with no checkpoints left, trains again.
    out = tmp_path / "model"
    with open(tmp_path / "train.log", "w") as fh:
        proc = subprocess.Popen(train_cmd(tiny_model_dir, ner_jsonl_dir, out), stdout=fh, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not out.exists():
        assert proc.poll() is None, (tmp_path / "train.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no model folder within the timeout"
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    text = (tmp_path / "train.log").read_text()
    assert code == 0, text[-3000:]
    assert "interrupted" not in text and "nothing was written" not in text
    assert rounded(metrics(out)) == rounded(metrics(uninterrupted))
    assert not run_folder(out).exists()


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(where)], check=True)
    return ok
