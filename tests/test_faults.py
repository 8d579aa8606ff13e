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


# `tokclf train` in a real process whose final move into place sends the process a real SIGTERM
# (before the two renames, or just after them): the only way to land a signal in that millisecond
# deterministically; polling for the folder from outside sees it too late on a loaded machine.
SIGNAL_DURING_SWAP = """
import os, signal, sys
import tokclf.core.fileio as fileio
from tokclf.cli.main import main

real, when = fileio.swap_into_place, sys.argv.pop(1)

def swap_with_a_signal(tmp, target):
    if when == "before":
        os.kill(os.getpid(), signal.SIGTERM)
    real(tmp, target)
    if when == "after":
        os.kill(os.getpid(), signal.SIGTERM)

fileio.swap_into_place = swap_with_a_signal
sys.exit(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_signal_while_the_model_moves_into_place_does_not_undo_the_run(tiny_model_dir, ner_jsonl_dir,
                                                                           uninterrupted, tmp_path, when):
    # The run must count as finished (exit 0): "interrupted" for a complete model would make a
    # user or scheduler rerun it, and the rerun, with no checkpoints left, would train again.
    out = tmp_path / "model"
    cmd = [sys.executable, "-c", SIGNAL_DURING_SWAP, when, *train_cmd(tiny_model_dir, ner_jsonl_dir, out)[3:]]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SIGTERM arrived while the finished model was being moved into place" in done.stderr
    assert "interrupted" not in done.stderr and "nothing was written" not in done.stderr
    assert rounded(metrics(out)) == rounded(metrics(uninterrupted))
    assert not run_folder(out).exists()


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)]
    ok = subprocess.run(mount, capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(where)], check=True)
    return ok


@pytest.fixture
def small_disk(tmp_path):
    """A real 22 MiB file system (tmpfs) for the output: room for the previous model (4.6 MB) and one
    tiny-BERT checkpoint (about 13 MB with its optimizer state), not two. Needs root and a
    container that allows mount."""
    where = tmp_path / "disk"
    if not _can_mount_tmpfs(where):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); a full disk is untested")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=22m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_full_output_disk_is_a_clear_error_and_the_run_resumes_once_there_is_room(
        tiny_model_dir, ner_jsonl_dir, uninterrupted, small_disk, tmp_path):
    import shutil

    out = small_disk / "model"
    shutil.copytree(uninterrupted, out)  # the previously published model (4.6 MB of the 22)
    previous = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    cmd = train_cmd(tiny_model_dir, ner_jsonl_dir, out, *EVERY_STEP)
    full = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert full.returncode != 0 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert "failed: no space left on the device" in full.stderr.lower() or "No space left" in full.stderr, \
        full.stderr[-3000:]
    assert "run the same command again" in full.stderr
    kept = complete_steps(out)
    assert kept and not partial_checkpoints(out)  # the earlier checkpoint intact, the half-written one gone
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == previous  # untouched

    subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"checkpoint-{kept[-1]} (step {kept[-1]})" in done.stderr
    got, want = metrics(out), metrics(uninterrupted)
    assert got["train"]["steps"] == want["train"]["steps"] == STEPS
    assert rounded(got) == rounded(want)


# A folder nothing may write to. The tests run as root, which `chmod` does not stop; a read-only
# bind mount does, made in a user + mount namespace of the command's own (`unshare -rm`: no
# privilege needed, nothing changes outside the command).
_READ_ONLY = 'dir=$1; shift; mount --bind -o ro "$dir" "$dir" && exec "$@"'


def read_only(folder: Path, cmd: list[str]) -> list[str]:
    """`cmd` run with `folder` (and everything under it) read-only."""
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _READ_ONLY, "sh", str(folder), *cmd]


def _read_only_works(folder: Path) -> str | None:
    """None when `read_only` makes `folder` unwritable here, else why not."""
    import shutil

    if shutil.which("unshare") is None:
        return "no `unshare` (util-linux)"
    probe = subprocess.run(read_only(folder, ["touch", str(folder / ".probe")]), capture_output=True, text=True)
    if probe.returncode == 0:
        (folder / ".probe").unlink()
        return "the read-only bind mount did not stop a write"
    if "Read-only file system" not in probe.stderr:
        return f"user + mount namespaces are not allowed here ({probe.stderr.strip()[:200]})"
    return None


def test_unwritable_output_folder_is_a_clear_error_and_the_previous_model_is_untouched(
        tiny_model_dir, ner_jsonl_dir, uninterrupted, tmp_path):
    """`tokclf train` into an output whose folder is read-only (a read-only file system or bind
    mount; for root, that is what "not writable" means): a tokclf error naming the path, exit 2, no
    traceback, the previously published model byte for byte as it was, nothing left beside it."""
    import shutil

    parent = tmp_path / "published"
    parent.mkdir()
    why = _read_only_works(parent)
    if why is not None:
        pytest.skip(f"cannot make a folder unwritable for root: {why}")
    out = parent / "model"
    shutil.copytree(uninterrupted, out)  # the previously published model
    previous = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    done = subprocess.run(read_only(parent, train_cmd(tiny_model_dir, ner_jsonl_dir, out)), capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"cannot write the run folder {run_folder(out)}: Read-only file system" in done.stderr, done.stderr[-3000:]
    assert "How to fix: choose a project_name on a writable disk" in done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == previous
    assert sorted(p.name for p in parent.iterdir()) == ["model"]


def wait_for_lock_free(lock: Path, timeout: float = 60) -> None:
    import fcntl

    deadline = time.monotonic() + timeout
    with open(lock, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{lock} still held: the killed launcher's workers are still running")
                time.sleep(0.01)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_killed_and_relaunched_resume(tiny_model_dir, ner_jsonl_dir, tmp_path):
    """2 torchrun processes (gloo on CPU) train into one run folder; SIGKILL to the whole process
    group (torchrun and both ranks, as a preempted machine) after a checkpoint; the same torchrun
    command again resumes from it on both ranks and ends like an uninterrupted torchrun run."""
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def ddp(out: Path) -> list[str]:
        cmd = train_cmd(tiny_model_dir, ner_jsonl_dir, out, *EVERY_STEP)
        return [str(torchrun), "--standalone", "--nproc_per_node", "2", *cmd[1:]]  # `-m tokclf.cli train ...`

    base = tmp_path / "base"
    done = subprocess.run(ddp(base), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = metrics(base)["train"]["steps"]

    out = tmp_path / "model"
    with open(tmp_path / "killed.log", "w") as fh:
        proc = subprocess.Popen(ddp(out), stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                start_new_session=True)
    deadline = time.monotonic() + 600
    while not [s for s in complete_steps(out) if s >= 3]:
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.01)
    # torchrun's workers run in sessions of their own: this kills torchrun only, and the workers,
    # orphaned, must end too (tokclf.training.checkpoints.die_with_launcher). Their end releases the
    # run folder's lock: wait on that, with a timeout.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    wait_for_lock_free(run_folder(out) / ".lock")
    kept = complete_steps(out)
    assert kept and kept[-1] < steps and not out.exists()

    again = subprocess.run(ddp(out), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("resuming from") == 2, again.stderr[-3000:]  # both ranks
    got, want = metrics(out), metrics(base)
    assert got["train"]["steps"] == steps
    assert rounded(got) == rounded(want)
    assert not run_folder(out).exists()
