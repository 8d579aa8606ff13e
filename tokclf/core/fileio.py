"""Write outputs so that nothing half-written is ever seen, with the user's file permissions.

One mechanism for every file and folder tokclf writes:
- `atomic_file(path)`: a temporary file beside `path`, renamed over it when the block succeeds and
  removed when it fails (`write_json` and `write_text` are built on it);
- `staged_dir(target)`: a temporary sibling folder that replaces `target` only when the block
  succeeds (model folders, pipeline stage outputs, ONNX exports), with `check_target` refusing to
  replace a folder tokclf did not write.
The staging folder is a hidden sibling of the target so the final rename stays on one file system.
`tempfile` creates files 0600 and folders 0700 (private to the process); what tokclf leaves behind
gets the modes an ordinary `open()`/`mkdir` would give under the user's umask, so a teammate on the
same machine can read a model folder when the umask allows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tokclf.core.errors import TokclfError

# A folder holding this file was written by tokclf and may be replaced by a new run.
MARKER = "training_params.json"


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (/proc/self/status),
    else through os.umask (set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` ("w" text, UTF-8, "\\n" line ends; or "wb"); it replaces
    `path` with the user's umask mode only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        if mode == "w":
            fh: IO[Any] = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        else:
            fh = os.fdopen(fd, "wb")
        with fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    with atomic_file(path) as fh:
        fh.write(text)


def write_json(path: str | Path, data: Any) -> None:
    """Atomic JSON write (indented, UTF-8, a final newline)."""
    with atomic_file(path) as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def check_target(target: Path, *, marker: str = MARKER, what: str = "written by tokclf") -> None:
    """Refuse to replace a non-empty folder that tokclf did not write (someone's data): only a
    folder holding `marker` (the file each kind of tokclf output carries) may be replaced."""
    if target.exists() and not target.is_dir():
        raise TokclfError(f"output path {target} exists and is a file", fix="choose another output path.", code="E0002")
    if target.is_dir() and any(target.iterdir()) and not (target / marker).exists():
        raise TokclfError(
            f"output folder {target} exists, is not empty and was not {what}; refusing to overwrite it",
            fix="choose another output path or empty that folder.", code="E0003",
        )


def make_staging_dir(target: Path, tag: str = "tmp") -> Path:
    """A new hidden sibling folder of `target` (`.NAME.TAG-xxxx`) with the user's umask mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-", dir=target.parent))
    os.chmod(tmp, dir_mode())
    return tmp


@contextlib.contextmanager
def staged_dir(target: str | Path, *, marker: str = MARKER, what: str = "written by tokclf") -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `target`, on error it is removed.
    `marker`/`what`: see check_target (model folders, pipeline stage outputs, ONNX exports)."""
    target = Path(target).expanduser().resolve()
    check_target(target, marker=marker, what=what)
    tmp = make_staging_dir(target)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, target)


def apply_umask(folder: Path) -> None:
    """Give `folder` and everything under it the modes plain `open()`/`mkdir` would under the user's
    umask (executable files keep their x bits). Libraries that write atomically through their own
    temporary files leave them private: safetensors 0.8 saves model weights 0600."""
    files, dirs = file_mode(), dir_mode()
    os.chmod(folder, dirs)
    for root, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            os.chmod(os.path.join(root, name), dirs)
        for name in filenames:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & 0o111
            os.chmod(path, dirs if executable else files)


def swap_into_place(tmp: Path, target: Path) -> None:
    """Replace `target` (if any) by the finished folder `tmp`: two renames on one file system, so a
    reader sees the old folder or the new one, never a mix; the old one is removed afterwards.
    `tmp` first gets the user's umask throughout (apply_umask)."""
    apply_umask(tmp)
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
