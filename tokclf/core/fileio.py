"""Write outputs to a temporary folder and move them into place only when everything succeeded.

A failed or interrupted run must never leave a half-written model where a good one (or nothing)
was before. The staging folder is a hidden sibling of the target so the final rename stays on one
file system (atomic for the folder swap).
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
from typing import Any

from tokclf.core.errors import TokclfError

# A folder holding this file was written by tokclf and may be replaced by a new run.
MARKER = "training_params.json"


def check_target(target: Path, *, marker: str = MARKER, what: str = "written by tokclf") -> None:
    """Refuse to replace a non-empty folder that tokclf did not write (someone's data): only a
    folder holding `marker` (the file each kind of tokclf output carries) may be replaced."""
    if target.exists() and not target.is_dir():
        raise TokclfError(f"output path {target} exists and is a file", fix="choose another output path.")
    if target.is_dir() and any(target.iterdir()) and not (target / marker).exists():
        raise TokclfError(
            f"output folder {target} exists, is not empty and was not {what}; refusing to overwrite it",
            fix="choose another output path or empty that folder.",
        )


@contextlib.contextmanager
def staged_dir(target: str | Path, *, marker: str = MARKER, what: str = "written by tokclf") -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `target`, on error it is removed.
    `marker`/`what`: see check_target (model folders, pipeline stage outputs, ONNX exports)."""
    target = Path(target).expanduser().resolve()
    check_target(target, marker=marker, what=what)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, target)


def swap_into_place(tmp: Path, target: Path) -> None:
    """Replace `target` (if any) by the finished folder `tmp`: two renames on one file system, so a
    reader sees the old folder or the new one, never a mix; the old one is removed afterwards."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> None:
    """Atomic JSON write: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
