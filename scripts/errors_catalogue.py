"""The error catalogue: every place tokclf raises one of its own errors carries a stable code
(`code="E2004"`), and docs/errors.md lists them all, generated from the source by this script.

    python scripts/errors_catalogue.py            # rewrite docs/errors.md
    python scripts/errors_catalogue.py --check    # exit 1 when docs/errors.md is stale or a code is missing/duplicated
    python scripts/errors_catalogue.py --assign   # give every raise site without a code the next free one

Codes are stable: a site keeps its code when the code around it moves, a removed site's code is
never reused (the highest code ever given in a range is remembered in docs/errors.md), and each
room of the library has its own range, so the first digit tells a user where to look.
The scan is over the AST, so it sees the real call sites, not text that merely looks like one.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "errors.md"
ERRORS_MODULE = REPO / "tokclf" / "core" / "errors.py"
BASE = "TokclfError"

# One range per room, in the import order of docs/architecture.md; tasks/ and flows/ share E9xx.
# Codes are E + the room's digit + a 3-digit serial (E2017: the 17th code given in tokclf/data).
RANGES: dict[str, int] = {
    "tokclf/core": 0, "tokclf/text": 1000, "tokclf/data": 2000, "tokclf/inference": 3000,
    "tokclf/evaluation": 4000, "tokclf/publishing": 5000, "tokclf/training": 6000,
    "tokclf/pipeline": 7000, "tokclf/cli": 8000, "tasks": 9000, "flows": 9000,
}
SPAN = 1000
CODE = re.compile(r"^E\d{4}$")
# Raised on purpose but not a mistake to look up: a signal ends training after a checkpoint
# (tokclf.training.signals), with its own one-line message and exit status 128 + the signal.
NOT_CATALOGUED = {"TrainingInterrupted"}
HIGH_WATER = re.compile(r"<!-- highest code given: (\{.*\}) -->")


@dataclass(frozen=True)
class Site:
    path: str  # repo-relative, posix
    line: int
    function: str
    cls: str
    code: str | None
    what: str
    fix: str
    call: ast.Call


def room_of(path: str) -> str:
    for prefix in sorted(RANGES, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    raise ValueError(f"{path} is in no room of RANGES")


def source_files() -> list[Path]:
    files: list[Path] = []
    for top in ("tokclf", "tasks", "flows"):
        files += sorted((REPO / top).rglob("*.py"))
    return files


def error_classes(files: list[Path]) -> set[str]:
    """TokclfError and every class anywhere in the source that derives from it (to a fixpoint)."""
    bases: dict[str, set[str]] = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, (ast.Name, ast.Attribute))}
                bases.setdefault(node.name, set()).update(names)
    family = {BASE}
    while True:
        grown = family | {name for name, b in bases.items() if b & family}
        if grown == family:
            return family
        family = grown


def _text(node: ast.expr | None) -> str:
    """A message argument as a reader of the docs should see it: literal text, with each
    interpolated value shown as `{expression}`."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            elif isinstance(part, ast.FormattedValue):
                out.append("{" + ast.unparse(part.value) + "}")
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return "{" + ast.unparse(node) + "}"


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def scan(files: list[Path] | None = None, root: Path = REPO) -> list[Site]:
    """Every call of a tokclf error class in `files` (default: the whole source), paths relative
    to `root`. The error family is always read from the whole source."""
    family = error_classes(source_files() + (files or []))
    files = source_files() if files is None else files
    sites: list[Site] = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        tree = ast.parse(f.read_text(encoding="utf-8"))
        # The innermost function around each call, for the docs' "raised in" column.
        owner: dict[int, str] = {}
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(fn):
                    owner[id(inner)] = fn.name  # later (inner) functions overwrite outer ones
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _called_name(node) not in family - NOT_CATALOGUED:
                continue
            if isinstance(node.func, ast.Name) and node.func.id == BASE and rel == "tokclf/core/errors.py":
                continue
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            code = kw["code"].value if isinstance(kw.get("code"), ast.Constant) else None
            cls = _called_name(node) or "?"
            if cls == "ValidationFailed":
                # It builds its own message and fix from the problems it is given.
                what_text = "data validation failed with {n} error(s), each listed with its file and row/line"
                fix_text = "correct the rows named (or run `tokclf validate` to see the full report)."
            else:
                what_text = _text(node.args[0] if node.args else kw.get("what"))
                fix_text = _text(kw.get("fix"))
            sites.append(Site(rel, node.lineno, owner.get(id(node), "<module>"), cls, code, what_text, fix_text, node))
    return sorted(sites, key=lambda s: (s.path, s.line))


def problems(sites: list[Site]) -> list[str]:
    out: list[str] = []
    seen: dict[str, Site] = {}
    for s in sites:
        where = f"{s.path}:{s.line}"
        if s.code is None:
            out.append(f"{where}: {s.cls}(...) has no code= (run python scripts/errors_catalogue.py --assign)")
            continue
        if not CODE.match(s.code):
            out.append(f"{where}: code {s.code!r} is not of the form E1234")
            continue
        base = RANGES[room_of(s.path)]
        if not base <= int(s.code[1:]) < base + SPAN:
            out.append(f"{where}: code {s.code} is outside its room's range E{base:04d}-E{base + SPAN - 1:04d}")
        if s.code in seen:
            out.append(f"{where}: code {s.code} is also used at {seen[s.code].path}:{seen[s.code].line}")
        seen[s.code] = s
    return out


def _high_water(doc_text: str) -> dict[int, int]:
    m = HIGH_WATER.search(doc_text)
    if not m:
        return {}
    return {int(k): int(v) for k, v in ast.literal_eval(m.group(1)).items()}


def assign() -> int:
    """Insert `code="Exxx"` into every call site without one; returns how many were given."""
    sites = scan()
    doc_text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    used: dict[int, int] = dict(_high_water(doc_text))
    for s in sites:
        if s.code and CODE.match(s.code):
            base = RANGES[room_of(s.path)]
            used[base] = max(used.get(base, base), int(s.code[1:]))
    pending = [s for s in sites if s.code is None]
    by_file: dict[str, list[Site]] = {}
    for s in pending:
        by_file.setdefault(s.path, []).append(s)
    for rel, file_sites in by_file.items():
        path = REPO / rel
        # ast offsets are in UTF-8 bytes, so edit the bytes.
        data = path.read_bytes()
        starts = [0]
        for line in data.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        base = RANGES[room_of(rel)]
        codes = {}
        for s in file_sites:  # in line order, so codes read top to bottom within a file
            used[base] = used.get(base, base) + 1
            if used[base] >= base + SPAN:
                raise SystemExit(f"room {room_of(rel)} has run out of codes")
            codes[id(s)] = f'code="E{used[base]:04d}"'.encode()
        # Edit from the end of the file backwards so earlier offsets stay valid.
        for s in sorted(file_sites, key=lambda s: (s.call.end_lineno, s.call.end_col_offset), reverse=True):
            close = starts[s.call.end_lineno - 1] + s.call.end_col_offset - 1
            assert data[close:close + 1] == b")", (rel, s.line)
            head = data[:close].rstrip()
            if head.endswith(b"(") or head.endswith(b","):
                # `f()` -> `f(code=..)`; `f(a,\n)` -> `f(a, code=..,\n)`: keep the author's layout.
                sep = b"" if head.endswith(b"(") else b" "
                tail = b"" if head.endswith(b"(") else b","
                data = head + sep + codes[id(s)] + tail + data[len(head):]
            else:
                data = data[:close] + b", " + codes[id(s)] + data[close:]
        path.write_bytes(data)
    return len(pending)


def render(sites: list[Site], high_water: dict[int, int]) -> str:
    rows = []
    for s in sorted(sites, key=lambda s: s.code or ""):
        what = s.what.replace("|", "\\|").replace("\n", " ")
        fix = s.fix.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {s.code} | `{s.cls}` | {what} | {fix} | `{s.path}` `{s.function}` |")
    for s in sites:
        if s.code:
            base = RANGES[room_of(s.path)]
            high_water[base] = max(high_water.get(base, base), int(s.code[1:]))
    ranges = "\n".join(
        f"| E{base:04d}-E{base + SPAN - 1:04d} | " + ", ".join(f"`{p}`" for p, b in RANGES.items() if b == base) + " |"
        for base in sorted(set(RANGES.values()))
    )
    hw = "{" + ", ".join(f"{k}: {v}" for k, v in sorted(high_water.items())) + "}"
    return f"""# Error catalogue

Every error tokclf raises on purpose prints as `error: [E2004] file:line: what went wrong` followed
by `How to fix: ...`, and exits with status 2. The code is stable:
search this page (or the source) for it. A code is never reused for another error, even after
the error it named is gone.

This page is generated from the source by `python scripts/errors_catalogue.py`
(`tests/test_errors_catalogue.py` fails when it is stale, when a raise site has no code, or when
two sites share one). In the tables, `{{name}}` marks a value filled in at run time.

## Ranges

The first digit names the part of tokclf that raised the error (see docs/architecture.md):

| codes | raised in |
|---|---|
{ranges}

## Errors

| code | class | what | how to fix | raised in |
|---|---|---|---|---|
{chr(10).join(rows)}

<!-- highest code given: {hw} -->
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail when docs/errors.md is stale or a site lacks a unique code")
    ap.add_argument("--assign", action="store_true", help="give every raise site without a code the next free code")
    args = ap.parse_args(argv)
    if args.assign:
        print(f"assigned {assign()} code(s)")
    sites = scan()
    bad = problems(sites)
    doc_text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    expected = render(sites, _high_water(doc_text))
    if args.check:
        if doc_text != expected:
            bad.append(f"{DOC.relative_to(REPO)} is stale: run python scripts/errors_catalogue.py")
        for b in bad:
            print(b, file=sys.stderr)
        return 1 if bad else 0
    if bad:
        for b in bad:
            print(b, file=sys.stderr)
        return 1
    DOC.write_text(expected, encoding="utf-8")
    print(f"wrote {DOC.relative_to(REPO)}: {len(sites)} error(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
