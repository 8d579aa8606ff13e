"""Content fingerprints of the pipeline: the same bytes give the same key, any change a new one,
and a process hashes unchanged files once."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

from tokclf.pipeline import keys


def test_fingerprint_follows_content_and_reuses_unchanged_hashes(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.txt").write_text("John B-PER\n", encoding="utf-8")
    (folder / "test.txt").write_text("Paris B-LOC\n", encoding="utf-8")
    first = keys.path_fingerprint(folder)

    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert keys.path_fingerprint(folder) == first
    assert not [f for f in opened if f.startswith(str(folder))]  # answered from the stat-keyed cache

    # Same size, other bytes, a later mtime: a new hash, read from disk.
    target = folder / "train.txt"
    before = target.stat().st_mtime_ns
    target.write_text("Mary B-PER\n", encoding="utf-8")
    os.utime(target, ns=(before + 1_000_000, before + 1_000_000))
    changed = keys.path_fingerprint(folder)
    assert changed != first
    assert any(f.endswith("train.txt") for f in opened)
    # A renamed file changes the key too (names are hashed with the bytes).
    target.rename(folder / "valid.txt")
    assert keys.path_fingerprint(folder) not in (first, changed)
