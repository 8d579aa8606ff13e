"""`dvc repro` in a temporary clone of the working tree with tiny model and data: the full run, the
no-op second run, a train parameter change (as `dvc exp run -S`) rerunning only train and what
follows, a data change rerunning everything, `dvc repro -s`, push/pull to the default local
remote, and a Prefect flow run recorded with `dvc commit`."""

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

pytestmark = pytest.mark.timeout(1200)
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


def test_repro_noop_partial_stage_and_data_change(clone, env):
    out = sh(["dvc", "repro"], clone, env)
    assert ran(out) == ALL
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


def test_push_pull_default_remote(clone, env):
    if not (clone / "dvc.lock").is_file():
        sh(["dvc", "repro"], clone, env)
    sh(["dvc", "push", "-q"], clone, env)
    remote = clone / ".dvc-remote"
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*"))
    shutil.rmtree(clone / ".dvc" / "cache")
    shutil.rmtree(clone / "data" / "raw")
    sh(["dvc", "pull", "-q"], clone, env)
    assert sorted(p.name for p in (clone / "data" / "raw").iterdir() if not p.name.startswith(".")) == [
        "test.jsonl", "train.jsonl", "validation.jsonl"]
    assert "up to date" in sh(["dvc", "status"], clone, env)


def test_flow_run_recorded_with_dvc(clone, env):
    """A Prefect run writes dvc.yaml's paths; `dvc commit` records them, so DVC sees nothing to do.
    The data stages' outputs come out byte for byte as `dvc repro` made them."""
    if not (clone / "dvc.lock").is_file():
        sh(["dvc", "repro"], clone, env)

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
