"""`dvc repro` in a temporary clone of the working tree with tiny model and data: every stage run once
by DVC with Python's import tracing on (each tokclf module a stage's process loads must be covered
by that stage's `deps`), a changed module under each code folder marking exactly the stages whose
deps name it, the no-op second run, a train parameter change (as `dvc exp run -S`) rerunning only
train and what follows, a data change rerunning everything, `dvc repro -s`, push/pull to the
default local remote, and a Prefect flow run recorded with `dvc commit`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_params  # tests/ is on sys.path

REPO = Path(__file__).resolve().parent.parent

# Every test needs the clone's traced repro (about 45 s on 2 cores) and runs DVC on top.
pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]
ALL = ["ingest", "validate", "tokenize", "train", "evaluate", "publish"]


def sh(args: list[str], cwd: Path, env: dict, timeout: float = 600, stdout_only: bool = False) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{out[-4000:]}"
    return proc.stdout if stdout_only else out


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


def clone_working_tree(dest: Path) -> None:
    """A fresh git repository holding the working tree (committed and untracked, not ignored files):
    what a clone of this checkout would hold once it is committed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
        "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }


@pytest.fixture(scope="module")
def clone(tmp_path_factory, tiny_model_dir, ner_jsonl_dir, env):
    root = tmp_path_factory.mktemp("clone")
    clone_working_tree(root)
    assert (root / "dvc.yaml").is_file() and (root / ".dvc" / "config").is_file()
    # Own data, the documented way: tracked with `dvc add`, named in data.data_path and in ingest's deps.
    shutil.copytree(ner_jsonl_dir, root / "data" / "source")
    write_params(root, tiny_model_dir, Path("data/source"))
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    spec["stages"]["ingest"]["deps"].append("data/source")
    (root / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    sh(["git", "init", "-q"], root, env)
    sh(["dvc", "add", "-q", "data/source"], root, env)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "tiny pipeline"], root, env)
    return root


# `python -X importtime` / PYTHONPROFILEIMPORTTIME=1: one stderr line per module a process imports,
# when it imports it (function-level imports included): "import time: self | cumulative | name".
IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)\s*$", re.M)


def tokclf_files(output: str) -> set[str]:
    """Repository paths of the tokclf modules an import trace shows (package -> its __init__.py)."""
    files = set()
    for name in IMPORT_LINE.findall(output):
        if name != "tokclf" and not name.startswith("tokclf."):
            continue
        rel = Path(*name.split("."))
        files.add((rel / "__init__.py" if (REPO / rel).is_dir() else rel.with_suffix(".py")).as_posix())
    return files


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.fixture(scope="module")
def reproduced(clone, env) -> dict[str, set[str]]:
    """Every stage run once, by DVC, in pipeline order (`dvc repro -s NAME`: DVC runs the stage's
    `cmd` as dvc.yaml writes it), with import tracing: stage -> the tokclf files its process loaded."""
    traced = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    loaded = {}
    for stage in ALL:
        out = sh(["dvc", "repro", "-s", stage], clone, traced)
        assert ran(out) == [stage]
        loaded[stage] = tokclf_files(out)
    return loaded


def test_stage_deps_cover_every_tokclf_module_its_process_loads(reproduced, clone):
    spec = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    for stage, files in reproduced.items():
        # The trace is real: every stage goes through the CLI and the stage entry points.
        assert {"tokclf/__init__.py", "tokclf/cli/main.py", "tokclf/pipeline/stages.py"} <= files, stage
        assert all((REPO / f).is_file() for f in files), stage
        uncovered = sorted(f for f in files if not covered(f, spec[stage]["deps"]))
        assert uncovered == [], f"{stage}: loads {uncovered}, not covered by its deps in dvc.yaml"
    assert "tokclf/training/run.py" in reproduced["train"] and "tokclf/training/run.py" not in reproduced["ingest"]


def test_changed_module_marks_exactly_the_stages_whose_deps_name_its_folder(reproduced, clone, env):
    spec = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    folders = sorted({d for s in spec.values() for d in s["deps"] if d.startswith("tokclf/") and (clone / d).is_dir()})
    assert len(folders) >= 8  # every room a stage runs
    for folder in folders:
        module = sorted((clone / folder).glob("*.py"))[-1]
        original = module.read_bytes()
        module.write_bytes(original + b"\n# changed\n")
        try:
            status = json.loads(sh(["dvc", "status", "--json"], clone, env, stdout_only=True))
        finally:
            module.write_bytes(original)
        expected = {name for name, s in spec.items() if folder in s["deps"]}
        assert set(status) == expected, folder
        for name in expected:
            changes = [c["changed deps"] for c in status[name] if "changed deps" in c]
            assert changes == [{folder: "modified"}], (folder, name, status[name])
    assert "up to date" in sh(["dvc", "status"], clone, env)


def test_repro_noop_partial_stage_and_data_change(reproduced, clone, env):
    metrics = json.loads((clone / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["f1"] <= 1.0
    assert (clone / "reports" / "plots" / "confusion.png").is_file()
    sh(["git", "add", "-A"], clone, env)
    sh(["git", "commit", "-qm", "baseline"], clone, env)

    out = sh(["dvc", "repro"], clone, env)
    assert ran(out) == [] and "Data and pipelines are up to date" in out
    assert "up to date" in sh(["dvc", "status"], clone, env)

    # a train parameter: train and what follows, not ingest/validate/tokenize
    out = sh(["dvc", "exp", "run", "-S", "train.lr=0.02"], clone, env)
    assert ran(out) == ["train", "evaluate", "publish"]
    table = json.loads(sh(["dvc", "exp", "show", "--json"], clone, env, stdout_only=True))
    f1s = []

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and data.get("metrics"):
                m = data["metrics"].get("reports/metrics.json", {}).get("data", {})
                if "f1" in m:
                    f1s.append(m["f1"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(table)
    assert len(f1s) >= 3  # workspace, baseline commit, the experiment

    # the data: everything downstream of it
    train_file = clone / "data" / "source" / "train.jsonl"
    train_file.write_text("\n".join(train_file.read_text().splitlines()[:-6]) + "\n")
    sh(["dvc", "add", "-q", "data/source"], clone, env)
    out = sh(["dvc", "repro"], clone, env)
    assert ran(out) == ALL

    # one stage on its own
    out = sh(["dvc", "repro", "-s", "-f", "evaluate"], clone, env)
    assert ran(out) == ["evaluate"]


def test_push_pull_default_remote(reproduced, clone, env):
    sh(["dvc", "push", "-q"], clone, env)
    remote = clone / ".dvc-remote"
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*"))
    shutil.rmtree(clone / ".dvc" / "cache")
    shutil.rmtree(clone / "data" / "raw")
    sh(["dvc", "pull", "-q"], clone, env)
    assert sorted(p.name for p in (clone / "data" / "raw").iterdir() if not p.name.startswith(".")) == [
        "test.jsonl", "train.jsonl", "validation.jsonl"]
    assert "up to date" in sh(["dvc", "status"], clone, env)


def test_flow_run_recorded_with_dvc(reproduced, clone, env):
    """A Prefect run writes dvc.yaml's paths; `dvc commit` records them, so DVC sees nothing to do.
    The data stages' outputs come out byte for byte as `dvc repro` made them."""

    def data_hashes() -> dict:
        lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
        return {o["path"]: o["md5"] for name in ("ingest", "validate", "tokenize") for o in lock[name]["outs"]}

    before = data_hashes()
    out = sh([sys.executable, "-m", "flows", "run", "--workdir", str(clone), "--record-with-dvc", "--dvc-push"],
             REPO, env, timeout=900, stdout_only=True)
    result = json.loads(out[out.index("{\n"):out.rindex("}") + 1])
    assert result["dvc"]["commands"] == ["dvc commit -f -q", "dvc push -q"]
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    record = json.loads((clone / "outputs" / "tiny" / "pipeline_run.json").read_text())
    details = json.loads((clone / "reports" / "evaluation.json").read_text())
    assert details["model"]["run_id"] == record["run_id"] == result["run_id"]
    assert {o["path"] for o in lock["stages"]["train"]["outs"]} == {"outputs/tiny"}
    assert "up to date" in sh(["dvc", "status"], clone, env)
    assert ran(sh(["dvc", "repro"], clone, env)) == []
    assert data_hashes() == before
