"""A real Label Studio server for the tests: `label-studio start` from its own cached venv
(scripts/setup_labelstudio.sh installs it), default SQLite in a temporary folder, a loopback port, a
user and a legacy API token created at start-up from LABEL_STUDIO_USERNAME / _PASSWORD /
_USER_TOKEN (label_studio/server.py `_create_user` reads them; `--enable-legacy-api-token` lets that
token authenticate). Started once per session by the `labelstudio` fixture in conftest.py."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

VERSION = "1.23.2"  # the one scripts/setup_labelstudio.sh installs
STARTUP_TIMEOUT_S = 420  # migrations on a fresh SQLite: ~40 s on 2 idle cores, minutes when they are busy


def venv_dir() -> Path:
    """Same default as scripts/setup_labelstudio.sh."""
    if os.environ.get("TOKCLF_LABEL_STUDIO_VENV"):
        return Path(os.environ["TOKCLF_LABEL_STUDIO_VENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tokclf" / f"label-studio-{VERSION}"


def executable() -> Path | None:
    venv = venv_dir()
    exe = venv / "bin" / "label-studio"
    return exe if (venv / ".tokclf-installed").is_file() and exe.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudioServer:
    url: str
    token: str
    username: str
    data_dir: Path
    log: Path
    process: subprocess.Popen

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def server_env(data_dir: Path, username: str, password: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           # Our PYTHONPATH (the worktree) holds a `tasks` package, which would shadow Label Studio's
           # own Django app of that name; our venv must not leak in either.
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": username,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token,
        # Offline and quiet: no PyPI version check, no analytics, no Sentry.
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    })
    return env


def start(exe: Path, data_dir: Path, log: Path) -> LabelStudioServer:
    """Start the server and wait until /health answers 200 and the token is accepted."""
    import httpx

    port = free_port()
    username, password, token = "annotator@example.com", secrets.token_hex(12), secrets.token_hex(20)
    url = f"http://127.0.0.1:{port}"
    fh = open(log, "wb")
    proc = subprocess.Popen(
        [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), "--enable-legacy-api-token", "--log-level", "WARNING"],
        env=server_env(data_dir, username, password, token), cwd=data_dir, stdout=fh, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    fh.close()
    server = LabelStudioServer(url, token, username, data_dir, log, proc)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"label-studio exited with {proc.returncode} during start-up:\n{server.log_tail()}")
        try:
            health = httpx.get(f"{url}/health", timeout=5)
            if health.status_code == 200:
                who = httpx.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"},
                                timeout=10)
                if who.status_code == 200:
                    return server
        except httpx.HTTPError:
            pass
        time.sleep(1)  # poll interval, bounded by the deadline above
    stop(server)
    raise RuntimeError(f"label-studio did not answer within {STARTUP_TIMEOUT_S}s:\n{server.log_tail()}")


def stop(server: LabelStudioServer, timeout: float = 30) -> None:
    """SIGTERM to the server's process group (the dev server forks a reloader child), then SIGKILL."""
    proc = server.process
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group
    except ProcessLookupError:
        pass
