"""SIGTERM / SIGINT during training: finish the optimizer step, checkpoint, stop, exit 143 / 130.

Preemption (spot machines, a cancelled CI job, `kill`) and Ctrl-C send a signal and usually wait a
little before SIGKILL. Dying at once would lose the work since the last checkpoint; instead the
handler only records the signal, the training loop finishes its current optimizer step, writes a
checkpoint (`tokclf.training.checkpoints`) and raises `TrainingInterrupted`, which the CLI prints
as one line and turns into the conventional exit status (128 + signal number). A second signal
exits at once (the checkpoint being written, if any, is left half-written in `.partial` and
ignored by the next run). Outside the training loop (loading, final scoring and writing) the
first signal raises at once: the run folder keeps its checkpoints, nothing half-written is kept.

Once a finished run removes its checkpoints and moves its folder into place
(`StopOnSignal.finishing`, in `tokclf.training.checkpoints.training_dir`) a signal no longer stops
it: it is only noted, and `outputs_in_place()` turns true when the folder is in place, so the
command exits 0. Reporting "interrupted" for a complete model would make the user (or a
scheduler) rerun it, and the rerun, finding no checkpoints, would train again from scratch.

Signal handlers can only be installed from the main thread; elsewhere (a Prefect task in a worker
thread) the process keeps its own handling and the periodic checkpoints still bound the loss.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from transformers import TrainerCallback

from tokclf.core.errors import TokclfError

log = logging.getLogger("tokclf")

SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Set once a run of this process has put its finished model folder in place; the CLI's own handlers
# (tokclf.cli.main) then treat a signal as arriving after the work was done.
_OUTPUTS_IN_PLACE = False


def outputs_in_place() -> bool:
    """Whether a training run in this process has moved its finished model folder into place."""
    return _OUTPUTS_IN_PLACE


class TrainingInterrupted(TokclfError):
    """A signal stopped training after a checkpoint; rerunning the same command resumes."""

    prefix = ""  # the CLI prints the message as is: it is not a mistake of the user's

    def __init__(self, signum: int, step: int | None, max_steps: int | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        where = f"at step {step} of {max_steps}" if step is not None and max_steps else "before training started"
        super().__init__(f"interrupted {where}; run the same command again to resume")


class StopOnSignal(TrainerCallback):
    """Trainer callback + signal handler (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_loop = False
        self.step: int | None = None
        self.max_steps: int | None = None
        self.saved_step: int | None = None
        self.deferring = False  # finishing: a signal is only noted
        self.completed = False  # the model folder is in place: a signal is only noted
        self.late_signum: int | None = None

    def interrupted(self) -> TrainingInterrupted:
        return TrainingInterrupted(self.signum or signal.SIGTERM, self.step, self.max_steps)

    def handle(self, signum: int, frame: Any) -> None:
        if self.deferring or self.completed:
            self.late_signum = signum
            return
        if self.signum is not None:
            # Second signal: the user wants out now.
            print(f"\nsecond {signal.Signals(signum).name}: exiting at once", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        if not self.in_loop:
            if _inside_logging(frame):
                # logging.Handler.emit catches every exception and prints "--- Logging error ---":
                # raising here would be swallowed and the run would go on. Noted instead; the next
                # safe point (the start of training, or the end of the run) raises.
                return
            raise self.interrupted()
        print(f"\n{signal.Signals(signum).name}: finishing the current step and writing a checkpoint "
              "(send it again to exit at once)", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def finishing(self) -> Iterator[None]:
        """Around the last steps of a finished run (its checkpoints removed, the folder renamed into
        place): a signal is only noted. Raising there would lose the run (no checkpoints left) or,
        between the two renames of the swap, leave no folder at the target. Not done by blocking
        the signals: `pthread_sigmask` blocks them in the calling thread only, and torch's and the
        tokenizers' threads still take a process-directed signal, whose Python handler then runs
        in the main thread all the same."""
        global _OUTPUTS_IN_PLACE
        self.deferring = True
        try:
            yield
            self.completed = True
            _OUTPUTS_IN_PLACE = True
        finally:
            self.deferring = False

    # --- TrainerCallback ---
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.signum is not None:  # arrived while a log line was being written (see handle)
            raise self.interrupted()
        self.in_loop = True
        self.step, self.max_steps = state.global_step, state.max_steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step = state.global_step
        if self.signum is not None:
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.saved_step = state.global_step
        if self.signum is not None:
            raise self.interrupted()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.in_loop = False
        self.step = state.global_step


def _inside_logging(frame: Any) -> bool:
    """Whether the interrupted code runs inside the logging module (a handler's emit)."""
    while frame is not None:
        if frame.f_code.co_filename == logging.__file__:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def stop_on_signal() -> Iterator[StopOnSignal]:
    """Install the handler for SIGTERM and SIGINT (main thread only) and restore the previous ones."""
    stopper = StopOnSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous = {s: signal.signal(s, stopper.handle) for s in SIGNALS}
    try:
        yield stopper
        if stopper.completed:
            if stopper.late_signum is not None:
                log.warning("%s arrived while the finished model was being moved into place; the run is complete",
                            signal.Signals(stopper.late_signum).name)
        elif stopper.signum is not None:  # arrived after the last step (final evaluation, loading)
            raise stopper.interrupted()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
