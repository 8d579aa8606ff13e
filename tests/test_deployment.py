"""A real local Prefect server (SQLite), the deployments of prefect.yaml served by `python -m flows
serve`, and `prefect deployment run ... --watch` from the command line: the run completes and leaves
metrics; a failing run makes --watch exit non-zero; the retraining deployment carries the cron
from configuration; serve stops on SIGTERM. Every process started here is stopped (its whole
process group), whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, write_params  # tests/ is on sys.path

REPO = Path(__file__).resolve().parent.parent

# A real Prefect server, `serve` and a watched run: about a minute on 2 cores.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
CRON = "15 4 * * 2"


class Processes:
    """Processes started in their own session; `stop_all` ends each whole process group."""

    def __init__(self) -> None:
        self.procs: list[tuple[subprocess.Popen, object]] = []

    def start(self, args: list[str], log: Path, **kw) -> subprocess.Popen:
        fh = open(log, "wb")
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.procs.append((proc, fh))
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 30) -> bool:
        """SIGTERM to the group, then SIGKILL; True when it ended on SIGTERM."""
        if proc.poll() is not None:
            return True
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return True
        try:
            proc.wait(timeout=timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group (runner children)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        return clean

    def stop_all(self) -> None:
        for proc, fh in reversed(self.procs):
            self.stop(proc)
            fh.close()


def wait_for(check, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def _deployment(api: str, name: str) -> dict | None:
    import httpx

    try:
        r = httpx.get(f"{api}/deployments/name/{name}", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def _serve(project: Path, tmp_path: Path, procs: Processes) -> tuple[dict, str, list[Path]]:
    """A Prefect server on a free port and `python -m flows serve` for `project`: (env, api, logs)."""
    import httpx

    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "TOKCLF_RETRAIN_CRON": CRON,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    prefect = str(Path(sys.executable).parent / "prefect")
    logs = [tmp_path / "server.log", tmp_path / "serve.log"]
    procs.start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], logs[0], env=env)

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 180, "the Prefect server", logs)
    procs.start([sys.executable, "-m", "flows", "serve", "--workdir", str(project)], logs[1], env=env, cwd=REPO)
    return env, api, logs


def test_deployment_run_on_a_real_server(tiny_model_dir, ner_jsonl_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ner_jsonl_dir, project / "source")
    write_params(project, tiny_model_dir, project / "source")
    prefect = str(Path(sys.executable).parent / "prefect")
    procs = Processes()
    try:
        env, api, logs = _serve(project, tmp_path, procs)
        serve = procs.procs[-1][0]

        def deployment(name: str) -> dict | None:
            return _deployment(api, name)

        wait_for(lambda: deployment("token-classification/train") and deployment("token-classification-retrain/scheduled"),
                 180, "the served deployments", logs)
        scheduled = deployment("token-classification-retrain/scheduled")
        assert [s["schedule"].get("cron") for s in scheduled["schedules"]] == [CRON]
        assert scheduled["parameters"]["workdir"] == str(project.resolve())
        assert "params" in deployment("token-classification/train")["parameter_openapi_schema"]["properties"]

        run = [prefect, "deployment", "run", "token-classification/train", "--watch", "--watch-timeout", "600"]
        failed = subprocess.run(run + ["--param", "config=missing.yaml"], env=env, capture_output=True, text=True,
                                timeout=660)
        assert failed.returncode != 0, failed.stdout[-2000:]
        started = time.time()
        done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=660)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:] + logs[1].read_text(errors="replace")[-3000:]
        assert "Completed" in done.stdout
        metrics = project / "reports" / "metrics.json"
        assert metrics.is_file() and metrics.stat().st_mtime >= started - 1
        assert 0.0 <= json.loads(metrics.read_text())["f1"] <= 1.0
        assert (project / "outputs" / "tiny" / "model.safetensors").is_file()

        assert procs.stop(serve), "serve did not stop on SIGTERM"
    finally:
        procs.stop_all()


def test_cancelling_a_deployment_run_checkpoints_the_training(tiny_model_dir, ner_jsonl_dir, tmp_path):
    """`prefect flow-run cancel` of a served run while it trains: the runner sends SIGTERM to the flow
    run's process group, the train task forwards one SIGTERM to its training process (a session of
    its own), which finishes its step, writes a checkpoint and exits 143; the run ends Cancelled,
    no training process is left, and nothing was published."""
    import re

    import httpx
    import yaml

    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ner_jsonl_dir, project / "source")
    config = write_params(project, tiny_model_dir, project / "source", checkpoint_minutes=0.00001)
    spec = yaml.safe_load(config.read_text())
    # 3,600 steps with a checkpoint after each: far more than can run before the cancel lands, even
    # on a loaded machine where starting the `prefect flow-run cancel` CLI takes seconds.
    spec["train"].update(epochs=300, batch_size=4, early_stopping_patience=0)  # 0: no early stop
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    checkpoints = project / "outputs" / ".tiny.run" / "checkpoints"
    prefect = str(Path(sys.executable).parent / "prefect")
    procs = Processes()
    try:
        env, api, logs = _serve(project, tmp_path, procs)
        wait_for(lambda: _deployment(api, "token-classification/train"), 180, "the served deployment", logs)
        created = subprocess.run([prefect, "deployment", "run", "token-classification/train"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stdout + created.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", created.stdout).group(1)

        def steps() -> list[int]:
            try:
                return sorted(int(p.name.split("-")[1]) for p in checkpoints.iterdir() if p.name.startswith("checkpoint-"))
            except FileNotFoundError:
                return []

        wait_for(lambda: any(s >= 3 for s in steps()), 600, "a checkpoint of the deployment run", logs)
        child = int(re.search(r"training process started \(pid (\d+)\)", logs[1].read_text()).group(1))
        cancel = subprocess.run([prefect, "flow-run", "cancel", run_id], env=env, capture_output=True, text=True,
                                timeout=120)
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr

        def state() -> str:
            return httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]["type"]

        wait_for(lambda: state() in ("CANCELLED", "CRASHED", "FAILED", "COMPLETED"), 300, "the run to end", logs)
        assert state() == "CANCELLED"
        wait_for(lambda: "the training process stopped" in logs[1].read_text(), 60, "the training's exit", logs)
        out = logs[1].read_text()
        assert "the training process stopped (exit status 143)" in out, out[-4000:]
        stopped = re.search(r"interrupted at step (\d+) of 3600; run the same command again to resume", out)
        assert stopped and int(stopped.group(1)) in steps(), out[-4000:]
        assert not Path(f"/proc/{child}").exists()  # no orphan training on
        assert not (project / "outputs" / "tiny").exists() and not (project / "reports" / "metrics.json").exists()
    finally:
        procs.stop_all()
