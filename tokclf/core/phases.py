"""Timestamps of a command's phases (imports, data, tokenize, model load, training, save, card,
scoring): where a short run's time goes (bench/overhead.py reads them).

`mark(name)` says "phase `name` ends now": one debug line on the `tokclf.phases` logger, and,
when the environment names a file in TOKCLF_PHASE_LOG, one JSON line appended to it with the wall
clock (time.time(), comparable with the launching process's clock) and this process's CPU
seconds. Nothing else is recorded (no paths, no parameters, never a token).
"""

from __future__ import annotations

import json
import logging
import os
import time

ENV = "TOKCLF_PHASE_LOG"
log = logging.getLogger("tokclf.phases")


def mark(name: str) -> None:
    now, cpu = time.time(), time.process_time()
    log.debug("phase %s done at %.3f (cpu %.2f s)", name, now, cpu)
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phase": name, "t": now, "cpu": round(cpu, 3), "pid": os.getpid()}) + "\n")
