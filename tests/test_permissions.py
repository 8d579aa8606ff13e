"""What tokclf writes gets the user's umask, as a plain `open()`/`mkdir` would: each command runs
through the installed `tokclf` entry point in a process started with umask 022 (folders 0755, files
0644) or 027 (0750 / 0640), never the 0700/0600 of a temporary folder or of a library's private
temporary file. The training run also shows what a user sees of the model loading: one tokclf line
for the new classifier head, no LOAD REPORT table."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_params  # tests/ is on sys.path

pytestmark = pytest.mark.timeout(600)
TOKCLF = str(Path(sys.executable).parent / "tokclf")


def tokclf(args: list[str], *, umask: int, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([TOKCLF, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, f"tokclf {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def modes(root: Path) -> dict[str, int]:
    """relative path -> permission bits of `root` and everything under it."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in sorted(root.rglob("*")):
        out[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return out


def assert_modes(root: Path, folder_mode: int, file_mode: int) -> None:
    expected = {rel: (folder_mode if (root / rel).is_dir() else file_mode) for rel in modes(root)}
    assert modes(root) == expected


@pytest.fixture(scope="module")
def trained(tiny_model_dir, ner_jsonl_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("umask")
    proc = tokclf(["train", "--model", str(tiny_model_dir), "--data-path", str(ner_jsonl_dir),
                   "--valid-split", "validation", "--project-name", str(work / "model"), "--epochs", "1",
                   "--batch-size", "8", "--max-seq-length", "32", "--stride", "4", "--lr", "5e-3",
                   "--logging-steps", "3"], umask=0o022, cwd=work)
    return work, proc


def test_train_model_folder_and_load_message(trained):
    work, proc = trained
    model = work / "model"
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "metrics.json"} <= set(modes(model))
    assert_modes(model, 0o755, 0o644)
    # The tiny BERT has a 2-label head; the data has 7 labels: the head alone is new, and that is said once.
    assert "LOAD REPORT" not in proc.stderr
    assert proc.stderr.count("classifier head: new (7 labels; the checkpoint's had 2)") == 1


def test_predict_output_under_both_masks(trained, ner_jsonl_dir):
    work, _ = trained
    for umask, mode, folder_mode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        out = work / f"predict-{umask:o}" / "predictions.jsonl"
        tokclf(["predict", "--model", str(work / "model"), "--input", str(ner_jsonl_dir / "test.jsonl"),
                "--output", str(out), "--no-progress"], umask=umask, cwd=work)
        assert out.read_text().count("\n") == 12
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert stat.S_IMODE(out.parent.stat().st_mode) == folder_mode  # the folder it made


def test_export_folder(trained):
    pytest.importorskip("onnx", reason="pip install 'tokclf[onnx]'")
    work, _ = trained
    tokclf(["export", "--model", str(work / "model"), "--output", str(work / "onnx")], umask=0o022, cwd=work)
    assert "model.onnx" in modes(work / "onnx")
    assert_modes(work / "onnx", 0o755, 0o644)


def test_validation_report_under_027(ner_jsonl_dir, tmp_path):
    report = tmp_path / "reports" / "validation_report.json"
    tokclf(["validate", "--data-path", str(ner_jsonl_dir), "--valid-split", "validation", "--output", str(report)],
           umask=0o027, cwd=tmp_path)
    assert_modes(tmp_path / "reports", 0o750, 0o640)


def test_pipeline_stage_output_folder(tiny_model_dir, ner_jsonl_dir, tmp_path):
    write_params(tmp_path, tiny_model_dir, ner_jsonl_dir)
    tokclf(["stage", "ingest", "--config", "params.yaml", "--raw", "data/raw", "--out", "data/prepared"],
           umask=0o022, cwd=tmp_path)
    for folder in ("data/raw", "data/prepared"):
        assert len(modes(tmp_path / folder)) > 3, folder
        assert_modes(tmp_path / folder, 0o755, 0o644)
