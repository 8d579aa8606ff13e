"""The error catalogue is whole and current: every raise site of a tokclf error has its own stable
code in its room's range, docs/errors.md lists exactly those, and users see the code."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_every_raise_site_has_a_unique_code_and_the_page_is_current() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "errors_catalogue.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_check_catches_a_site_without_a_code(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("errors_catalogue", REPO / "scripts" / "errors_catalogue.py")
    cat = importlib.util.module_from_spec(spec)
    sys.modules["errors_catalogue"] = cat  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(cat)
    finally:
        del sys.modules["errors_catalogue"]
    src = tmp_path / "tokclf" / "data" / "zz_catalogue_probe.py"
    src.parent.mkdir(parents=True)
    src.write_text('from tokclf.core.errors import DataError\n\n\ndef f():\n'
                   '    raise DataError("x", where="y", fix="z")\n\n\ndef g():\n'
                   '    raise DataError("x", code="E2001")\n\n\ndef h():\n'
                   '    raise DataError("x", code="E2001")\n', encoding="utf-8")
    sites = cat.scan([src], root=tmp_path)
    found = cat.problems(sites)
    assert [s.code for s in sites] == [None, "E2001", "E2001"]
    assert any("zz_catalogue_probe.py:5" in p and "no code" in p for p in found)
    assert any("zz_catalogue_probe.py:13" in p and "also used" in p for p in found)


def test_the_cli_prints_the_code(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_parameter: 1\n", encoding="utf-8")
    exe = shutil.which("tokclf")
    assert exe, "the tokclf entry point is not installed (pip install -e .)"
    done = subprocess.run([exe, "train", "--config", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    first = done.stderr.strip().splitlines()[0]
    assert first.startswith("error: [E0"), done.stderr
    code = first.split("[", 1)[1].split("]", 1)[0]
    assert f"| {code} |" in (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
