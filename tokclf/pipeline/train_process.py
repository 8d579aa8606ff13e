"""The train stage in a child process: what the Prefect train task runs (tasks.train_task).

Training inside the flow run's own process would tie the two together: an out-of-memory kill or a
`kill -9` of the training is then a kill of the flow run, and Prefect's task retries never see it.
Here the task starts `python -m tokclf.cli stage train` (the command dvc.yaml runs: the one
training path, `tokclf.pipeline.stages.train`) and watches it:

- its output (stdout and stderr) goes line by line to `on_line` (the Prefect run logger);
- exit 0: the model folder is in place, complete (it is moved there in one rename at the very end);
- death by a signal or an exit without a tokclf error (a traceback, 137, ...) raises
  `TrainingCrashed`, which the task retries; a retry passes `resume="auto"`, so it continues from
  the run folder's newest complete checkpoint (`tokclf.training.checkpoints`);
- a tokclf error (bad data, a refused resume: exit 2) or an interruption after a checkpoint (a
  SIGTERM / SIGINT of the child: exit 143 / 130) raises `TrainingProcessError`, a TokclfError,
  which is not retried (the same again would fail the same way, or was asked to stop).

Signals: the child runs in a session of its own, so a signal to the flow run's process group (the
Prefect runner cancelling a run, Ctrl-C in a terminal) does not reach it directly: the parent
forwards exactly one SIGTERM when it is itself stopped (any exception while waiting, Prefect's
TerminationSignal included), then waits for the child to write its checkpoint and exit 143; a
second interruption while waiting, or `stop_grace_s` passing, kills it. Were the child in the
parent's group it would get the group's signal *and* the forwarded one, and tokclf treats a second
signal as "exit at once", losing the checkpoint. The child asks Linux to SIGKILL it if the parent
dies (`tokclf.training.checkpoints.die_with_launcher`, keyed on LAUNCHER_PID_ENV), so a SIGKILLed
flow run leaves no orphan training on and holding the run folder's lock.

Secrets: the parameters reach the child as a file without the token (`public_dict`, mode 0600,
removed afterwards); a Hub token in `params.token` is passed as the HF_TOKEN environment variable,
never on the command line (which `ps` shows to every user) or in a log line.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline.paths import RUN_RECORD
from tokclf.training.checkpoints import LAUNCHER_PID_ENV, run_folder

STOP_GRACE_S = 300.0  # after the forwarded SIGTERM: time to finish the step and write a checkpoint
_TAIL_LINES = 40


class TrainingCrashed(RuntimeError):
    """The training process died (a signal) or failed without a tokclf error: worth a retry, which
    resumes from the newest checkpoint. Not a TokclfError on purpose (tasks.retry_crashed_training
    retries everything else)."""

    def __init__(self, message: str, *, returncode: int) -> None:
        self.returncode = returncode
        super().__init__(message)


class TrainingProcessError(TokclfError):
    """The training process stopped with a tokclf error or after an interruption: not retried."""

    prefix = ""

    def __init__(self, what: str, *, returncode: int, where: str | None = None, fix: str | None = None,
                 code: str | None = None) -> None:
        self.returncode = returncode
        super().__init__(what, where=where, fix=fix, code=code)


def child_command(config: Path, *, data_dir: str | Path, features_dir: str | Path, report_path: str | Path,
                  out_dir: str | Path) -> list[str]:
    """The child's command line: `tokclf stage train` with this interpreter (no secret in it)."""
    return [sys.executable, "-m", "tokclf.cli", "stage", "train", "--config", str(config), "--data", str(data_dir),
            "--features", str(features_dir), "--report", str(report_path), "--out", str(out_dir)]


def child_env(params: TokenClassificationParams, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ours, unbuffered output, the launcher's pid, and the Hub token (the
    only way it reaches the child)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env[LAUNCHER_PID_ENV] = str(os.getpid())
    token = params.token_value()
    if token:
        env["HF_TOKEN"] = token
    return env


def write_child_params(params: TokenClassificationParams, folder: Path) -> Path:
    """The parameters as a config file the child reads with `--config` (the token left out)."""
    path = folder / "params.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(params.public_dict(), fh)
    return path


def describe_exit(returncode: int) -> str:
    """`exit status 1` / `signal SIGKILL (9)`, as Popen reports a death by signal (negative)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal {name} ({-returncode})"
    return f"exit status {returncode}"


def _tokclf_error(tail: list[str]) -> str | None:
    """The error block the tokclf CLI printed last (`error: ...` and its How to fix), if any; None
    when the output ends in a traceback (a crash, not a tokclf error)."""
    start = None
    for i, line in enumerate(tail):
        if line.startswith("error: "):
            start = i
        elif line.startswith("Traceback (most recent call last)"):
            start = None
    return "\n".join(tail[start:]).strip() if start is not None else None


def classify_exit(returncode: int, tail: list[str], *, run_dir: Path) -> Exception | None:
    """The exception the task raises for the child's exit (None for success)."""
    if returncode == 0:
        return None
    how = describe_exit(returncode)
    last = "\n".join(tail[-15:]).strip()
    if returncode in (128 + signal.SIGTERM, 128 + signal.SIGINT):
        return TrainingProcessError(
            f"the training process was interrupted ({how}) and wrote a checkpoint: {last.splitlines()[-1] if last else ''}",
            returncode=returncode, where=str(run_dir),
            fix="run the flow again: training resumes from that checkpoint.", code="E7012",
        )
    if returncode == TokclfError.exit_code or (returncode == 1 and _tokclf_error(tail) is not None):
        return TrainingProcessError(
            f"the training process stopped with an error ({how}):\n{_tokclf_error(tail) or last}", returncode=returncode, code="E7013",
        )
    if returncode < 0:
        cause = " (the out-of-memory killer or `kill -9`)" if returncode == -signal.SIGKILL else ""
        return TrainingCrashed(
            f"the training process died of {how}{cause}; its checkpoints are kept in {run_dir}, "
            "and a retry resumes from the newest one", returncode=returncode,
        )
    return TrainingCrashed(
        f"the training process failed ({how}); its checkpoints are kept in {run_dir}, and a retry resumes from "
        f"the newest one. Its last output:\n{last}", returncode=returncode,
    )


def _pump(stream: Any, on_line: Callable[[str], None], tail: collections.deque[str]) -> None:
    """Child output -> on_line, a line at a time. Progress bars redraw with carriage returns and
    no newline: only the last state of such a line is passed on, not every redraw."""
    for raw in iter(stream.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n").rsplit("\r", 1)[-1].rstrip()
        if text:
            tail.append(text)
            on_line(text)
    stream.close()


def _stop(proc: subprocess.Popen[bytes], grace_s: float, on_line: Callable[[str], None]) -> None:
    """Forward one SIGTERM and wait for the child to checkpoint and exit; kill it on a second
    interruption or when the grace time runs out."""
    if proc.poll() is not None:
        return
    on_line(f"stopping the training process (pid {proc.pid}): SIGTERM, waiting for its checkpoint")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
        on_line(f"the training process stopped ({describe_exit(proc.returncode)})")
    except subprocess.TimeoutExpired:
        on_line(f"the training process did not exit within {grace_s:.0f} s of SIGTERM: killing it")
        proc.kill()
        proc.wait()
    except BaseException:  # a second interruption: the user wants out now (as `tokclf train` does)
        proc.kill()
        proc.wait()
        raise


def train_in_child(params: TokenClassificationParams, *, data_dir: str | Path, features_dir: str | Path,
                   report_path: str | Path, out_dir: str | Path, resume: str | None = None,
                   on_line: Callable[[str], None] = print, stop_grace_s: float = STOP_GRACE_S) -> dict[str, Any]:
    """Run the train stage (`tokclf.pipeline.stages.train`) in a child process and return what it
    returns: {"stage", "model", "run_id", "metrics"} read from the finished model folder.

    resume: overrides params.resume (a retry passes "auto"). Raises TrainingCrashed (retry) or
    TrainingProcessError (do not); see the module docstring."""
    from tokclf.core.fileio import check_target
    from tokclf.training.run import check_runnable

    target = Path(out_dir).expanduser().resolve()
    if resume is not None:
        params = params.model_copy(update={"resume": resume})
    # What can be refused before starting anything is refused here, with its own error type.
    check_runnable(params.model_copy(update={"push_to_hub": False}))
    check_target(target)
    with tempfile.TemporaryDirectory(prefix="tokclf-train-") as scratch:
        config = write_child_params(params, Path(scratch))
        cmd = child_command(config, data_dir=data_dir, features_dir=features_dir, report_path=report_path,
                            out_dir=target)
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=child_env(params), start_new_session=True)
        on_line(f"training process started (pid {proc.pid}): tokclf stage train --out {target}"
                + (f" --resume {params.resume}" if resume is not None else ""))
        pump = threading.Thread(target=_pump, args=(proc.stdout, on_line, tail), name="tokclf-train-output",
                                daemon=True)
        pump.start()
        try:
            returncode = proc.wait()
        except BaseException:
            _stop(proc, stop_grace_s, on_line)
            raise
        finally:
            pump.join(timeout=30)
    problem = classify_exit(returncode, list(tail), run_dir=run_folder(target))
    if problem is not None:
        raise problem
    record = json.loads((target / RUN_RECORD).read_text(encoding="utf-8"))
    metrics_file = target / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    return {"stage": "train", "model": str(target), "run_id": record.get("run_id"), "metrics": metrics}
