"""Publishing against a local fake Hub (tests/hubfake.py) through the real huggingface_hub client.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET once, at import; this
test process imported it long ago with offline mode on. So every push runs in a fresh Python
process started with those documented variables set (HF_ENDPOINT -> the fake, HF_HUB_OFFLINE=0,
HF_HUB_DISABLE_XET=1: hf_xet would otherwise send uploads to a Xet CAS server) and HF_DEBUG=1
(huggingface_hub logs every request). Its output is kept as a log file and grepped for the tokens.

Order matters (module state): a training run publishes, a worse copy is gated, then forced, then
the failures; the last test greps every file and log for the dummy tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hubfake import FakeHub, User

# Split literals: the joined tokens never appear in this file, so a copy of the repo (another
# test clones it) does not trip the final grep.
DUMMY = "hf_TOKCLF" "dummyToken7Xq9Lw2Zr5Kp8Vn3"  # alice's write token
BAD = "hf_TOKCLF" "badToken3Hd5Jf7Kg9Lq2Mw4Ne"  # unknown to the Hub -> 401
READONLY = "hf_TOKCLF" "readOnly6Pa8Sd0Fg2Hj4Kl6Zx"  # bob's read-only token -> 403 on writes
TOKENS = (DUMMY, BAD, READONLY)
REPO = "alice/tiny-ner"
REPO_ROOT = Path(__file__).resolve().parent.parent

# The run: a training script as a flow would run it (checks before training, train, publish).
FLOW_SCRIPT = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from tokclf import TokenClassificationParams, train

params = TokenClassificationParams(**json.loads(sys.argv[1]), token=os.environ.pop("TOKCLF_TEST_TOKEN"))
logging.getLogger("tokclf").info("params: %r / %s", params, params)
result = train(params)  # checks the Hub before training, publishes after the model is in place
print("RESULT " + json.dumps(result.publish))
"""

# Failures: 5xx (no retry, then with a retry) and a refused connection, through the Python API.
TRANSIENT_SCRIPT = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.INFO)
from tokclf.publishing.hub import HubTransientError, is_retryable, publish

model, repo, closed = sys.argv[1:4]
token = os.environ["HF_TOKEN"]
out = {}
try:
    publish(model, repo_id=repo, token=token)
    out["no_retry"] = "published"
except HubTransientError as exc:
    out["no_retry"] = {"type": type(exc).__name__, "retryable": is_retryable(exc), "message": str(exc)}
out["with_retry"] = publish(model, repo_id=repo, token=token, retries=2, backoff_s=0.05).status
try:
    publish(model, repo_id=repo, token=token, endpoint=closed)
    out["refused"] = "published"
except HubTransientError as exc:
    out["refused"] = {"type": type(exc).__name__, "message": str(exc)}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def hub():
    users = {DUMMY: User("alice", orgs=["acme"]), READONLY: User("bob", role="read")}
    with FakeHub(users) as fake:
        yield fake


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("publish")
    (path / "logs").mkdir()
    return path


def hub_env(hub: FakeHub, work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    env.update(
        HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0", HF_HUB_DISABLE_XET="1", HF_DEBUG="1",
        HF_HOME=str(work / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(REPO_ROOT),
    )
    env.update(extra)
    return env


def run_logged(work: Path, name: str, args: list[str], env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], env=env, cwd=work, capture_output=True, text=True, timeout=timeout)
    (work / "logs" / f"{name}.log").write_text(
        f"$ {' '.join(args[:2])} ...\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n", encoding="utf-8"
    )
    return proc


def result_of(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result; rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def cli(hub: FakeHub, work: Path, name: str, *args: str, token: str = DUMMY) -> subprocess.CompletedProcess:
    return run_logged(work, name, ["-m", "tokclf.cli", "publish", *args], hub_env(hub, work, HF_TOKEN=token), timeout=120)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name, content in folder_bytes(folder).items():
        h.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return h.hexdigest()


@pytest.fixture(scope="module")
def first_push(hub, work, tiny_model_dir, ner_jsonl_dir):
    spec = dict(
        data_path=str(ner_jsonl_dir), model=str(tiny_model_dir), project_name=str(work / "runs" / "tiny-ner"),
        valid_split="validation", lr=5e-3, epochs=2, batch_size=8, max_seq_length=32, stride=4, logging_steps=2,
        seed=13, push_to_hub=True, username="alice",
    )
    proc = run_logged(work, "flow-run", ["-c", FLOW_SCRIPT, json.dumps(spec)], hub_env(hub, work, TOKCLF_TEST_TOKEN=DUMMY))
    return result_of(proc), work / "runs" / "tiny-ner"


@pytest.fixture(scope="module")
def worse_copy(first_push, work) -> Path:
    """The same model folder with a validation F1 0.2 lower in metrics.json."""
    _, model = first_push
    worse = work / "worse" / "tiny-ner"
    shutil.copytree(model, worse)
    metrics = json.loads((worse / "metrics.json").read_text())
    metrics["validation"]["f1"] = round(metrics["validation"]["f1"] - 0.2, 6)
    (worse / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return worse


def test_flow_run_publishes_byte_for_byte(first_push, hub):
    result, model = first_push
    assert result["status"] == "published", result
    assert result["repo_id"] == REPO and result["reason"] == "new repo: nothing published before"
    repo = hub.repos[REPO]
    assert repo.private is True
    assert result["commit"] == repo.head.oid
    remote = hub.files(REPO)
    assert remote.pop(".gitattributes").startswith(b"*.7z")
    assert remote == folder_bytes(model)  # every file, byte for byte, nothing else
    assert sorted(remote) == result["files"]
    # large/binary files took the LFS route (batch API + PUT to the URL the Hub gave), the rest inline
    head = repo.head.files
    assert head["model.safetensors"].lfs and not head["config.json"].lfs
    assert hashlib.sha256(remote["model.safetensors"]).hexdigest() in hub.lfs_objects
    assert hub.count("PUT", r"^/_lfs_upload/") >= 1 and hub.count("POST", r"lfs/objects/batch") == 1
    # checked before training (whoami), verified after the commit (tree read back at the commit)
    assert hub.count("GET", r"^/api/whoami-v2$", user="alice") == 1
    assert hub.count("GET", rf"/tree/{repo.head.oid}$", user="alice") == 1
    # the pushed card is valid Hub metadata and its model-index equals metrics.json
    from tokclf.publishing.card import card_metadata

    meta = card_metadata(remote["README.md"].decode())
    metrics = json.loads(remote["metrics.json"])
    values = {(r["dataset"]["split"], m["type"]): m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert values[("validation", "f1")] == metrics["validation"]["f1"] == result["new_f1"]
    assert values[("test", "accuracy")] == metrics["test"]["accuracy"]
    assert 'model="alice/tiny-ner"' in remote["README.md"].decode()


def test_worse_model_is_gated(first_push, worse_copy, hub, work):
    before = len(hub.repos[REPO].commits)
    proc = cli(hub, work, "gated", "--model", str(worse_copy), "--username", "alice")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    published = first_push[0]["new_f1"]
    new = json.loads((worse_copy / "metrics.json").read_text())["validation"]["f1"]
    assert out["status"] == "skipped"
    assert out["reason"].startswith(f"not published: F1 {new:.4f} < {published:.4f}"), out["reason"]
    assert out["published_f1"] == published and out["commit"] is None
    assert len(hub.repos[REPO].commits) == before  # nothing written to the repo
    assert hub.count("POST", r"/api/repos/create", user="alice") == 1  # not even create_repo


def test_tolerance_lets_a_slightly_worse_model_through(worse_copy):
    from tokclf.publishing.hub import gate

    assert gate(0.70, 0.72, tolerance=0.05).publish
    assert not gate(0.70, 0.72, tolerance=0.01).publish
    assert gate(0.72, 0.72).publish  # equal is enough
    assert gate(None, None).publish and not gate(None, 0.5).publish and gate(None, 0.5, force=True).publish
    assert gate(0.1, 0.9, repo_exists=False).publish


def test_forced_run_publishes(worse_copy, hub, work):
    before = len(hub.repos[REPO].commits)
    (worse_copy / "training_log.json").unlink()  # the repo mirrors the folder: this one goes in the same commit
    proc = cli(hub, work, "forced", "--model", str(worse_copy), "--username", "alice", "--force-publish")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "published" and out["reason"].startswith("forced: F1"), out
    assert len(hub.repos[REPO].commits) == before + 1
    remote = hub.files(REPO)
    remote.pop(".gitattributes")
    assert remote == folder_bytes(worse_copy)
    assert "training_log.json" not in remote


def test_same_folder_again_passes_without_a_new_commit(worse_copy, hub, work):
    head, count = hub.repos[REPO].head.oid, len(hub.repos[REPO].commits)
    proc = cli(hub, work, "again", "--model", str(worse_copy), "--username", "alice")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "published" and out["reason"].startswith("F1 "), out  # equal F1 passes the gate
    assert out["commit"] == head and len(hub.repos[REPO].commits) == count  # nothing changed: no empty commit


def test_401_clear_message_no_retry(worse_copy, hub, work):
    before_digest, before_requests = digest(worse_copy), hub.count(user="<invalid>")
    proc = cli(hub, work, "bad-token", "--model", str(worse_copy), "--username", "alice", token=BAD)
    assert proc.returncode == 2
    assert "401" in proc.stderr and "rejected the token" in proc.stderr and "How to fix" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert hub.count(user="<invalid>") - before_requests == 1  # one request, no retry
    assert digest(worse_copy) == before_digest  # local model intact


@pytest.mark.parametrize(("username", "token"), [("acme-other", DUMMY), ("bob", READONLY)])
def test_403_clear_message_no_retry(worse_copy, hub, work, username, token):
    creates = hub.count("POST", r"/api/repos/create")
    proc = cli(hub, work, f"forbidden-{username}", "--model", str(worse_copy), "--username", username, token=token)
    assert proc.returncode == 2, proc.stdout
    assert "403" in proc.stderr and f"may not write to {username}/tiny-ner" in proc.stderr
    assert hub.count("POST", r"/api/repos/create") - creates == 1
    assert f"{username}/tiny-ner" not in hub.repos


def test_5xx_and_connection_errors_are_transient(worse_copy, hub, work):
    repo = "alice/tiny-ner-5xx"
    hub.fail("POST", rf"^/api/models/{repo}/commit/", status=503, times=2)  # 1st call, then 1st try of the 2nd
    before_digest = digest(worse_copy)
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = run_logged(work, "transient", ["-c", TRANSIENT_SCRIPT, str(worse_copy), repo, closed],
                      hub_env(hub, work, HF_TOKEN=DUMMY))
    out = result_of(proc)
    assert out["no_retry"]["type"] == "HubTransientError" and out["no_retry"]["retryable"] is True
    assert "503" in out["no_retry"]["message"]
    assert out["with_retry"] == "published"
    assert hub.count("POST", rf"^/api/models/{repo}/commit/") == 3
    assert len(hub.repos[repo].commits) == 2  # .gitattributes, then the one successful commit
    assert out["refused"]["type"] == "HubTransientError" and "cannot reach the Hub" in out["refused"]["message"]
    assert digest(worse_copy) == before_digest


def test_offline_mode_and_missing_token_fail_before_training(monkeypatch, tmp_path):
    """In this process huggingface_hub runs offline (conftest): check_publish_ready says so clearly."""
    from tokclf.core.params import TokenClassificationParams
    from tokclf.publishing.hub import (
        HubAuthError,
        HubError,
        check_publish_ready,
        resolve_token,
    )

    params = TokenClassificationParams(data_path="d", project_name=str(tmp_path / "m"), push_to_hub=True,
                                       username="alice", token=DUMMY)
    with pytest.raises(HubError) as exc:
        check_publish_ready(params)
    assert "offline mode" in str(exc.value) and "HF_HUB_OFFLINE=0" in str(exc.value)
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert resolve_token(None) == "hf_from_env" and resolve_token("hf_explicit") == "hf_explicit"
    from tokclf.publishing.hub import _require_token

    with pytest.raises(HubAuthError) as exc:
        _require_token(None)
    assert "HF_TOKEN" in str(exc.value)


def test_refuses_a_folder_holding_the_token(worse_copy, tmp_path):
    from tokclf.publishing.hub import HubError, scan_for_token

    planted = "hf_TOKCLFplanted" + "Leak9Qw8Er7Ty6"  # not one of TOKENS: the final grep must not see it
    leaky = tmp_path / "leaky"
    shutil.copytree(worse_copy, leaky)
    (leaky / "notes.txt").write_text(f"token={planted}\n")
    with pytest.raises(HubError) as exc:
        scan_for_token(leaky, planted)
    assert "notes.txt" in str(exc.value) and planted not in str(exc.value)
    scan_for_token(worse_copy, planted)


PREFECT_FLOW_SCRIPT = r"""
import json, sys
root = sys.argv[1]
from prefect.testing.utilities import prefect_test_harness
from flows.training import training_flow

with prefect_test_harness(server_startup_timeout=180):
    out = training_flow(config="params.yaml", workdir=root)
print("RESULT " + json.dumps(out["publish"]))
"""


@pytest.mark.slow  # a Prefect server and a training run in a subprocess: about a minute
def test_prefect_flow_run_publishes(hub, work, tiny_model_dir, ner_jsonl_dir):
    """The Prefect training flow (publish task included) with push_to_hub, against the fake Hub;
    the token comes from HF_TOKEN, never from params.yaml or the flow's parameters."""
    import yaml

    root = work / "flow-project"
    root.mkdir()
    spec = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    spec["data"].update(data_path=str(ner_jsonl_dir), valid_split="validation", validation_split_ratio=None, seed=13)
    spec["tokenize"].update(model=str(tiny_model_dir), max_seq_length=32, stride=4)
    spec["train"].update(project_name="outputs/flow-ner", lr=5e-3, epochs=1, batch_size=8, logging_steps=2,
                         mixed_precision=None, log="none")
    spec["publish"].update(push_to_hub=True, username="alice")
    (root / "params.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = hub_env(hub, work, HF_TOKEN=DUMMY, PREFECT_HOME=str(work / "prefect-home"), DO_NOT_TRACK="1",
                  PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    proc = run_logged(work, "prefect-flow-run", ["-c", PREFECT_FLOW_SCRIPT, str(root)], env, timeout=600)
    result = result_of(proc)
    assert result["status"] == "published" and result["repo_id"] == "alice/flow-ner", result
    remote = hub.files("alice/flow-ner")
    remote.pop(".gitattributes")
    assert remote == folder_bytes(root / "outputs" / "flow-ner")
    assert DUMMY not in (root / "params.yaml").read_text()


def test_dummy_tokens_nowhere(first_push, hub, work, tmp_path_factory, capsys, caplog):
    """Every file any test left (runs, copies, HF_HOME, logs of every run), the captured output of this
    process and everything the fake Hub stored: none holds a token."""
    logs = list((work / "logs").glob("*.log"))
    assert "flow-run" in {p.stem for p in logs}  # and the log of every other push of this module that ran
    flow_log = (work / "logs" / "flow-run.log").read_text()
    assert "Request " in flow_log and "authorization: <TOKEN>" in flow_log  # HF_DEBUG was on: requests were logged
    checked = 0
    for root in {tmp_path_factory.getbasetemp(), work}:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                for token in TOKENS:
                    assert token.encode() not in content, (path, token[:12])
                checked += 1
    assert checked > 20
    captured = capsys.readouterr()
    for token in TOKENS:
        assert token not in captured.out + captured.err + caplog.text
    for repo in hub.repos.values():
        for commit in repo.commits:
            for stored in commit.files.values():
                assert not any(t.encode() in stored.content for t in TOKENS)
    assert not any(any(t.encode() in blob for t in TOKENS) for blob in hub.lfs_objects.values())

