"""Resumable runs: the run folder, complete checkpoints, and what a resumed run must match.

A run trains in one hidden sibling of its output folder whose name depends only on the output
(`.NAME.run`), so a rerun with the same project_name finds the interrupted run's checkpoints there.
The folder moves into place as the model folder when the run finishes (its checkpoints removed
first); a crash or a kill leaves it for the next run to resume from.

A checkpoint (`checkpoints/checkpoint-STEP`, the Trainer's own layout: weights, optimizer with the
row-sparse embedding moments, scheduler, RNG states, trainer_state.json with the log history and
the early-stopping state) is written under `checkpoints/.partial/` and renamed into place when
complete, with a manifest (`MANIFEST`: the run's fingerprint and every file's size) written last.
So a kill during a write leaves the previous checkpoints valid and the half-written one in
`.partial`, which the next save or run removes; a checkpoint whose files do not have their
recorded sizes (a truncated file) is skipped and the previous one used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tokclf.core.errors import TokclfError
from tokclf.core.params import NOT_TRAINING_KEYS, TokenClassificationParams

log = logging.getLogger("tokclf")

CHECKPOINTS = "checkpoints"   # in the run folder: the Trainer's output_dir
PARTIAL = ".partial"          # in CHECKPOINTS: the checkpoint being written
MANIFEST = "tokclf_checkpoint.json"
RUN_FILE = "run.json"         # in the run folder: the tracker run to continue
LOCK = ".lock"
LAUNCHER_PID_ENV = "TOKCLF_LAUNCHER_PID"  # set by a launcher this process must not outlive
_STEP = re.compile(r"^checkpoint-(\d+)$")
_FRESH = "run the same command with --resume never to start fresh (the old checkpoints are removed)"


def run_folder(target: Path) -> Path:
    """The run folder of output `target` (same name on every attempt, one file system)."""
    return target.parent / f".{target.name}.run"


# --- what a checkpoint must match -------------------------------------------------------------------

def _sha(h: Any) -> str:
    return h.hexdigest()[:16]


def data_fingerprint(data: Any, splits: list[str]) -> str:
    """Content hash of the named splits' words and tags (and the label names), read in order."""
    from tokclf.core.columns import TAGS, TOKENS

    h = hashlib.sha256(json.dumps(data.label_names).encode())
    for name in splits:
        h.update(f"\0split:{name}\0".encode())
        for batch in data.splits[name].select_columns([TOKENS, TAGS]).iter(batch_size=2048):
            h.update(json.dumps([batch[TOKENS], batch[TAGS]], ensure_ascii=False).encode())
    return _sha(h)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return _sha(h)


def model_fingerprint(model_path: str) -> str:
    """Hash of the base model's config and weight files (a Hub id not on disk: its name)."""
    path = Path(model_path)
    if not path.is_dir():
        return "name:" + model_path
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.name == "config.json" or f.suffix in (".safetensors", ".bin"):
            with f.open("rb") as fh:
                h.update(f.name.encode())
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return _sha(h)


def training_params(params: TokenClassificationParams) -> dict[str, Any]:
    """The parameters a resumed run must share with the checkpoint (paths compared by content)."""
    dumped = params.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if k not in NOT_TRAINING_KEYS and k not in ("data_path", "model")}


def run_fingerprint(params: TokenClassificationParams, *, data: Any, splits: list[str], tokenizer: Any,
                    model_path: str) -> dict[str, Any]:
    return {
        "data": data_fingerprint(data, splits),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "model": model_fingerprint(model_path),
        "params": training_params(params),
    }


def changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's, in words."""
    out = []
    for key, what in (("data", "the training data (content of the train/validation splits)"),
                      ("tokenizer", "the tokenizer"), ("model", "the base model (config or weights)")):
        if saved.get(key) != current.get(key):
            out.append(f"{what} changed")
    old, new = saved.get("params", {}), current.get("params", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return out


# --- complete checkpoints -----------------------------------------------------------------------------

def write_manifest(folder: Path, fingerprint: dict[str, Any], progress: dict[str, float] | None = None) -> None:
    """Last file of a checkpoint: the run's fingerprint, the size of every file beside it, and the
    run's progress so far (`progress`: see `read_progress`)."""
    from tokclf.core.fileio import write_json

    sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest: dict[str, Any] = {"fingerprint": fingerprint, "files": sizes}
    if progress:
        manifest["progress"] = progress
    write_json(folder / MANIFEST, manifest)


def read_progress(folder: Path | None) -> dict[str, float]:
    """What the run had done up to checkpoint `folder`, over all its processes: {"steps", "loss_sum"
    (the training loss summed over those optimizer steps), "runtime_s", "cpu_s" (training time)}.
    The Trainer forgets both when it resumes (its train loss and runtime cover its own process),
    so a resumed run adds its own to these. Zeros for a fresh run; {} for a checkpoint of a tokclf
    version that did not record it."""
    zero = {"steps": 0, "loss_sum": 0.0, "runtime_s": 0.0, "cpu_s": 0.0}
    if folder is None:
        return zero
    try:
        progress = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("progress") or {}
    except (OSError, ValueError):
        return {}
    return {k: progress[k] for k in zero} if set(zero) <= set(progress) and progress["steps"] == step_of(folder) else {}


def checkpoint_problem(folder: Path) -> str | None:
    """Why `folder` is not a usable checkpoint (None when it is complete and intact)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{folder}: not a complete tokclf checkpoint (no readable {MANIFEST})"
    for name, size in manifest.get("files", {}).items():
        f = folder / name
        if not f.is_file():
            return f"{f}: missing"
        if f.stat().st_size != size:
            return f"{f}: {f.stat().st_size} bytes, {size} written (truncated or damaged)"
    return None


_WRITE_FAILED = ("No space left", "os error", "PytorchStreamWriter failed", "unexpected pos", "Disk quota")


def write_failure(exc: BaseException, folder: Path) -> str | None:
    """What went wrong when writing into `folder` failed with `exc`, if it was the disk: an OSError,
    or what torch.save (RuntimeError "unexpected pos" / "PytorchStreamWriter failed") and
    safetensors (SafetensorError "... os error 28") raise on a full disk instead of OSError, or any
    error while the file system has no room left. None: a bug or another failure, to raise as is."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    try:
        st = os.statvfs(folder)
        full = st.f_bavail * st.f_frsize < 1 << 20
    except OSError:
        full = False
    text = str(exc)
    if full:
        return f"no space left on the device ({text.splitlines()[0] if text else type(exc).__name__})"
    if any(m in text for m in _WRITE_FAILED):
        return text.splitlines()[0]
    return None


def step_of(folder: Path) -> int:
    m = _STEP.match(folder.name)
    return int(m.group(1)) if m else -1


def checkpoints_newest_first(checkpoints: Path) -> list[Path]:
    if not checkpoints.is_dir():
        return []
    found = [p for p in checkpoints.iterdir() if p.is_dir() and _STEP.match(p.name)]
    return sorted(found, key=step_of, reverse=True)


def clean_partial(checkpoints: Path) -> None:
    """Remove a checkpoint whose write was cut short (a kill during the write): never resumed from."""
    partial = checkpoints / PARTIAL
    if partial.is_dir() and any(partial.iterdir()):
        log.info("removing a half-written checkpoint (%s) left by a run killed while writing it",
                 ", ".join(sorted(p.name for p in partial.iterdir())))
    shutil.rmtree(partial, ignore_errors=True)


def resume_point(resume: str, checkpoints: Path, fingerprint: dict[str, Any]) -> Path | None:
    """The checkpoint to continue from (None: start fresh), as `resume` ('auto', 'never', a path)
    asks. 'auto' takes the newest intact checkpoint of this run folder (a damaged one is reported,
    removed and the previous one taken); resuming is refused when the checkpoint was made with
    other data, tokenizer, model or training parameters."""
    clean_partial(checkpoints)
    if resume == "never":
        return None
    if resume == "auto":
        candidates = checkpoints_newest_first(checkpoints)
    else:
        path = Path(resume).expanduser().resolve()
        if not path.is_dir():
            raise TokclfError(f"no checkpoint folder at {path}", where="resume",
                              fix="pass a checkpoint-STEP folder, 'auto' or 'never'.", code="E6001")
        problem = checkpoint_problem(path)
        if problem:
            raise TokclfError(problem, where="resume", fix="pass an intact checkpoint folder, or " + _FRESH + ".", code="E6002")
        candidates = [path]
    for folder in candidates:
        problem = checkpoint_problem(folder)
        if problem:
            log.warning("skipping damaged checkpoint (%s); falling back to the previous one", problem)
            shutil.rmtree(folder, ignore_errors=True)
            continue
        saved = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["fingerprint"]
        diff = changes(saved, fingerprint)
        if diff:
            raise TokclfError(
                f"cannot resume from {folder}: it was made by a different run:\n"
                + "\n".join(f"  - {d}" for d in diff),
                where="resume", fix=_FRESH + ", or restore what changed to continue the interrupted run.", code="E6003",
            )
        return folder
    return None


# --- the run folder -----------------------------------------------------------------------------------

def _lock(folder: Path) -> IO[Any]:
    """Hold an exclusive lock on the run folder (two runs into one output would mix checkpoints)."""
    import fcntl

    fh = open(folder / LOCK, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise TokclfError(f"another tokclf run is training into {folder.parent / folder.name[1:-4]} "
                          f"(it holds {folder / LOCK})",
                          fix="wait for it to finish, or choose another project_name.", code="E6004") from None
    return fh


def clean_stale(target: Path) -> None:
    """Remove staging folders of earlier runs into `target` that nothing can resume from: the
    random-named `.NAME.tmp-*` of tokclf versions before resuming existed and `.NAME.old-*` left
    by a kill during a swap. Called while holding the run folder's lock."""
    for p in target.parent.glob(f".{target.name}.*"):
        if p.is_dir() and (p.name.startswith(f".{target.name}.tmp-") or p.name.startswith(f".{target.name}.old-")):
            log.info("removing the staging folder of an abandoned run: %s", p)
            shutil.rmtree(p, ignore_errors=True)


def read_run_file(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def update_run_file(folder: Path, **values: Any) -> None:
    from tokclf.core.fileio import write_json

    write_json(folder / RUN_FILE, {**read_run_file(folder), **values})


def die_with_launcher() -> None:
    """End this process when the process that launched it dies, so that no orphan trains on and
    holds the run folder's lock (a relaunch is then refused, or it finishes and a relaunch trains
    again). Two launchers ask for it:
    - torchrun: it starts each worker in a session of its own (torch.distributed.elastic's
      subprocess handler: start_new_session), so a SIGKILL to torchrun's process group (a CI
      timeout, `kill -9 -PGID`) does not reach the workers;
    - the Prefect train task (tokclf.pipeline.train_process), which starts the training in a
      session of its own too and names itself in LAUNCHER_PID_ENV.
    Linux only (prctl PR_SET_PDEATHSIG); elsewhere, and for any other process, a no-op."""
    import ctypes
    import signal
    import sys

    # Taken out of the environment: what this process starts in turn has another parent.
    launcher = os.environ.pop(LAUNCHER_PID_ENV, "")
    if not (launcher.isdigit() or "TORCHELASTIC_RUN_ID" in os.environ) or not sys.platform.startswith("linux"):
        return
    parent = int(launcher) if launcher.isdigit() else os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the prctl call
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def training_dir(target: Path, *, resume: str = "auto",
                 finishing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
                 ) -> Iterator[tuple[Path, bool]]:
    """(the run folder, whether this process writes the outputs).

    Every rank of a distributed run (torchrun, `accelerate launch`) uses the same folder; rank 0
    locks it, writes the outputs and moves it into place. On success the checkpoints and the run's
    bookkeeping are removed and the folder replaces `target` in one rename; on any error or signal
    it stays, for the next run to resume from. `finishing()` is entered around that removal and
    rename (`tokclf.training.signals.StopOnSignal.finishing`: a signal there no longer stops the run)."""
    from tokclf.core.fileio import check_target, dir_mode, swap_into_place
    from tokclf.core.hardware import distributed_rank

    check_target(target)
    rank, world = distributed_rank()
    die_with_launcher()
    folder = run_folder(target)
    lock = None
    try:
        if rank == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            if resume == "never" and folder.exists():
                log.info("resume=never: removing the checkpoints of the earlier run in %s", folder)
                shutil.rmtree(folder)
            folder.mkdir(exist_ok=True, mode=dir_mode())
            lock = _lock(folder)
            clean_stale(target)
        else:
            folder.mkdir(parents=True, exist_ok=True, mode=dir_mode())
    except OSError as exc:
        raise TokclfError(f"cannot write the run folder {folder}: {exc.strerror or exc}", where="project_name",
                          fix="choose a project_name on a writable disk with free space.", code="E6005") from None
    try:
        yield folder, rank == 0
        if rank == 0:
            # From here the run must complete: once the checkpoints are gone an interruption would
            # lose it all, and between the swap's two renames it would leave no folder at `target`.
            with finishing():
                shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
                (folder / RUN_FILE).unlink(missing_ok=True)
                (folder / LOCK).unlink(missing_ok=True)
                swap_into_place(folder, target)
    finally:
        if lock is not None:
            lock.close()
