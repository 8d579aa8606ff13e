"""Signals as users and schedulers send them, to real `tokclf` processes: `tokclf serve` stops
cleanly on SIGTERM (exit 0) and answers an over-size body with 413; `tokclf train` exits at once
on a second Ctrl-C and with 143 on SIGTERM before training starts. Processes are synchronised on
their output and files, never on sleeps."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, save_tiny_bert, wait_until

httpx = pytest.importorskip("httpx")


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def serve_model(tokenizer_dir, tmp_path_factory) -> Path:
    return save_tiny_bert(tokenizer_dir, tmp_path_factory.mktemp("model"), seed=5, labels=["O", "B-PER", "I-PER"])


def test_serve_sigterm_exits_0_and_big_body_gets_413(serve_model, tmp_path):
    pytest.importorskip("uvicorn")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "tokclf.cli", "serve", "--model", str(serve_model), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: healthy(url), proc)
        r = httpx.post(f"{url}/predict", json={"text": "John Smith"}, timeout=30)
        assert r.status_code == 200
        # 20 MB, far over the default 1 MiB limit: a 413 naming the limit, not a reset connection.
        big = json.dumps({"text": "x" * 20_000_000}).encode()
        r = httpx.post(f"{url}/predict", content=big, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 413 and "the limit is 1048576" in r.json()["error"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a graceful shutdown, not death by the signal (-15)
    finally:
        if proc.poll() is None:
            proc.kill()


def _train_cmd(model: Path, data: Path, out: Path, *extra: str, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "tokclf.cli", *(["-v"] if verbose else []), "train", "--data-path", str(data), "--model", str(model),
            "--project-name", str(out), "--valid-split", "validation", "--epochs", "30", "--batch-size", "4",
            "--max-seq-length", "32", "--stride", "4", "--checkpoint-minutes", "0.00001", *extra]


def test_second_ctrl_c_exits_at_once(tiny_model_dir, ner_jsonl_dir, tmp_path):
    out = tmp_path / "model"
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(_train_cmd(tiny_model_dir, ner_jsonl_dir, out), stdout=fh, stderr=subprocess.STDOUT)
    checkpoints = tmp_path / ".model.run" / "checkpoints"
    wait_until(lambda: checkpoints.is_dir() and any(p.name.startswith("checkpoint-") for p in checkpoints.iterdir()), proc)
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: "send it again to exit at once" in log.read_text(), proc)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    text = log.read_text()
    # Either the second Ctrl-C came first (exits at once) or the step had already finished and
    # the checkpoint was written (the normal one-line exit); both exit 130 with a valid checkpoint.
    assert code == 130
    assert "second SIGINT: exiting at once" in text or "run the same command again to resume" in text
    assert any(p.name.startswith("checkpoint-") for p in checkpoints.iterdir())


def test_sigterm_before_training_starts_keeps_nothing_half_written(tiny_model_dir, ner_jsonl_dir, tmp_path):
    # SIGTERM while the data is read: exit 143, no output folder, no staging leftovers beyond the
    # (empty) run folder.
    out = tmp_path / "model"
    proc = subprocess.Popen(_train_cmd(tiny_model_dir, ner_jsonl_dir, out, verbose=True), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "tokclf" in line:  # the first log line: tokclf is loading the tokenizer / data
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 143, "".join(seen) + rest
    assert "Traceback" not in rest and ("nothing was written" in rest or "run the same command again" in rest), rest
    assert not out.exists()


def test_signal_during_a_log_line_before_training_is_not_swallowed(capsys):
    """A signal whose handler runs inside a logging handler's emit must not raise there: logging
    catches the exception ("--- Logging error ---") and the run would go on. It is noted, and the
    start of training raises it."""
    import logging

    from tokclf.training.signals import StopOnSignal, TrainingInterrupted

    stopper = StopOnSignal()

    class Emit(logging.Handler):
        def emit(self, record):
            stopper.handle(signal.SIGTERM, sys._getframe())

    logger = logging.getLogger("tokclf.test.signal_in_emit")
    logger.propagate = False
    logger.addHandler(Emit())
    logger.warning("a line")
    assert "Logging error" not in capsys.readouterr().err
    assert stopper.signum == signal.SIGTERM
    with pytest.raises(TrainingInterrupted, match="before training started"):
        stopper.on_train_begin(None, None, None)
    # Outside logging the first signal still raises at once.
    with pytest.raises(TrainingInterrupted):
        StopOnSignal().handle(signal.SIGTERM, sys._getframe())
