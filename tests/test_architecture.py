"""The layout is the architecture (docs/architecture.md): each room imports only the rooms below
it, and the library never imports its orchestrator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tokclf"
# Lower rooms first; a room may import itself and the rooms before it.
ORDER = ["core", "text", "data", "inference", "evaluation", "publishing", "training", "pipeline", "cli"]
ORCHESTRATORS = ("prefect", "dvc", "tasks", "flows")


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "tokclf":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else "top"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "tokclf":  # `from tokclf import x`: x is a module or a public name
                found += [(node.lineno, f"tokclf.{alias.name}") for alias in node.names
                          if (PACKAGE / alias.name).is_dir()]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_lives_in_a_room() -> None:
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside a room folder: {loose} (docs/architecture.md)"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ORDER)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_go_down_the_rooms_only(path: Path) -> None:
    rel = path.relative_to(PACKAGE)
    room = rel.parts[0] if len(rel.parts) > 1 else "top"
    allowed = set(ORDER[: ORDER.index(room) + 1]) if room in ORDER else set(ORDER)
    bad = []
    for line, module in _imports(path):
        if module.split(".")[0] in ORCHESTRATORS:
            bad.append(f"line {line}: imports the orchestrator {module}")
        target = _room(module)
        if target is not None and target != "top" and target not in allowed:
            bad.append(f"line {line}: {room} imports {module} ({target} is above {room})")
    assert not bad, f"{rel}:\n" + "\n".join(bad)


def test_tokclf_and_its_cli_work_without_prefect_or_dvc(tmp_path: Path) -> None:
    """`import tokclf`, every command's --help and a real `tokclf validate` run with Prefect and
    DVC unimportable (sys.modules entries set to None make `import prefect` raise ImportError)."""
    data = tmp_path / "train.jsonl"
    data.write_text('{"tokens": ["John", "lives", "here"], "tags": ["B-PER", "O", "O"]}\n', encoding="utf-8")
    script = f"""
import sys
for name in {ORCHESTRATORS!r}:
    sys.modules[name] = None
import tokclf
from tokclf.cli.main import build_parser, main
assert main(["validate", "--data-path", {str(data)!r}]) == 0
import tokclf.training.run, tokclf.pipeline.stages, tokclf.inference.predictor, tokclf.publishing.hub
loaded = [m for m in sys.modules if m.split(".")[0] in {ORCHESTRATORS!r} and sys.modules[m] is not None]
assert not loaded, loaded
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_import_tokclf_loads_no_heavy_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, tokclf, tokclf.cli.main; "
         "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'prefect') if m in sys.modules))"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
