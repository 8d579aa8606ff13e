"""Malformed span exports (the issue's "Bad input" list): each gives a non-zero exit, a message
naming the file, the record/line, the offsets where there are any, and how to fix it, and leaves
no output behind. Run through the `tokclf` command as users run it (`convert` writes a file,
`validate --output` a report, `train` a model folder: none of them may appear)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TEXT = "John Smith lives in New York."


def ls(tasks: list[dict]) -> str:
    return json.dumps(tasks)


def task(tid: int, spans: list[tuple[int, int, str | None, str | None]], text: str | None = TEXT) -> dict:
    result = [{"id": f"r{i}", "type": "labels", "value": {"start": s, "end": e, **({"text": t} if t is not None else {}),
                                                           "labels": [lab] if lab else []}}
              for i, (s, e, lab, t) in enumerate(spans, 1)]
    data = {"text": text} if text is not None else {"url": "x"}
    return {"id": tid, "data": data, "annotations": [{"id": 100 + tid, "result": result}]}


GOOD = task(1, [(0, 10, "PER", "John Smith")])

# name -> (files to write {relative path: str | bytes}, data path, extra flags, fragments the message must hold)
CASES = {
    "truncated-json": (
        {"ls.json": ls([GOOD, task(2, [(20, 28, "LOC", "New York")])])[:-40]}, "ls.json", [],
        ["ls.json, line 1", "truncated", "How to fix", "export the file again"]),
    "task-without-text": (
        {"ls.json": ls([GOOD, task(2, [], text=None)])}, "ls.json", [],
        ["ls.json, task 2 (id 2)", "no text", "data.text"]),
    "offsets-out-of-range": (
        {"d.jsonl": json.dumps({"text": TEXT, "label": [[0, 4, "PER"], [20, 99, "LOC"]]}) + "\n"}, "d.jsonl", [],
        ["d.jsonl, line 1", "[20:99]", "outside the text", "29 characters", "How to fix"]),
    "end-before-start": (
        {"d.jsonl": json.dumps({"text": TEXT, "label": [[10, 5, "PER"]]}) + "\n"}, "d.jsonl", [],
        ["d.jsonl, line 1", "[10:5]", "before it starts", "How to fix"]),
    "text-mismatch": (
        {"ls.json": ls([task(1, [(0, 10, "PER", "Jon Smith")])])}, "ls.json", [],
        ["ls.json, task 1 (id 1)", "[0:10]", "'Jon Smith'", "'John Smith'", "How to fix"]),
    "span-without-label": (
        {"ls.json": ls([task(1, [(0, 10, None, "John Smith")])])}, "ls.json", [],
        ["ls.json, task 1 (id 1)", "[0:10]", "no label", "How to fix"]),
    "overlapping-spans": (
        {"ls.json": ls([task(1, [(0, 10, "PER", "John Smith"), (5, 16, "ORG", "Smith lives")])])}, "ls.json", [],
        ["ls.json, task 1 (id 1)", "[0:10] 'John Smith' (PER)", "[5:16] 'Smith lives' (ORG)", "overlapping=longest"]),
    "ann-without-txt": (
        {"brat/a.txt": TEXT, "brat/a.ann": "T1\tPER 0 10\tJohn Smith\n", "brat/b.ann": "T1\tPER 0 4\tJohn\n"}, "brat", [],
        ["b.ann", "b.txt is missing", "How to fix"]),
    "non-utf8": (
        {"d.jsonl": (json.dumps({"text": "Caf\u00e9 Smith", "label": [[0, 4, "ORG"]]}, ensure_ascii=False) + "\n").encode("latin-1")},
        "d.jsonl", [], ["d.jsonl, line 1", "not valid UTF-8", "byte", "iconv"]),
    "unknown-label-strict": (
        {"ls.json": ls([task(1, [(0, 10, "PER", "John Smith"), (20, 28, "CITY", "New York")])])}, "ls.json",
        ["--span-alignment", "strict", "--label-map", "PER=Person,LOC=Place"],
        ["ls.json, task 1 (id 1)", "[20:28]", "'CITY'", "not a known type", "How to fix"]),
    "edge-inside-word-strict": (
        {"d.jsonl": json.dumps({"text": TEXT, "label": [[0, 3, "PER"]]}) + "\n"}, "d.jsonl",
        ["--span-alignment", "strict"], ["d.jsonl, line 1", "[0:3]", "edge inside a word", "span_alignment=expand"]),
}


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def tokclf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokclf.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_export_convert_and_validate(name: str, tmp_path: Path) -> None:
    files, data, flags, fragments = CASES[name]
    _write(tmp_path, files)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    convert_flags = [f for f in flags]
    res = tokclf("convert", data, "out.jsonl", "--to", "doccano", *convert_flags, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    for fragment in fragments:
        assert fragment in res.stderr, (fragment, res.stderr)
    assert "Traceback" not in res.stderr
    res = tokclf("validate", "--data-path", data, "--test-split", "none", "--output", "report.json", *flags, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert all(fragment in res.stderr for fragment in fragments), res.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written, no temp files


@pytest.mark.slow
def test_bad_export_train_leaves_no_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    files, data, _, fragments = CASES["overlapping-spans"]
    _write(tmp_path, files)
    res = tokclf("train", "--data-path", data, "--model", str(tiny_model_dir), "--project-name", "model",
                 "--epochs", "1", "--test-split", "none", cwd=tmp_path)
    assert res.returncode == 2 and fragments[1] in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ls.json"]
