"""Which evaluation the saved model comes from, against the last one: honest early stopping.

The run keeps the checkpoint with the best validation F1 (`load_best_model_at_end`). Choosing on
validation makes that validation F1 an optimistic estimate, so metrics.json reports the chosen
evaluation and the last one side by side (`early_stopping`): a user sees how much choosing the
epoch moved validation F1, and bench/accuracy.py measures whether it helps on test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_STEP = re.compile(r"checkpoint-(\d+)$")


def epoch_choice(log_history: Sequence[dict[str, Any]], best_checkpoint: str | None,
                 metric: str = "eval_f1") -> dict[str, Any] | None:
    """{"chosen": {...}, "last": {...}, "chose_last": bool} from the Trainer's log history, each
    {"epoch", "step", "validation_f1"}; None when the run had no evaluation. The chosen one is the
    evaluation at the best checkpoint's step (the last evaluation when no checkpoint was kept)."""
    evals = [e for e in log_history if metric in e]
    if not evals:
        return None

    def row(e: dict[str, Any]) -> dict[str, Any]:
        return {"epoch": round(float(e.get("epoch") or 0), 4), "step": int(e.get("step") or 0),
                "validation_f1": float(e[metric])}

    last = evals[-1]
    chosen = last
    match = _STEP.search(str(best_checkpoint or ""))
    if match:
        step = int(match.group(1))
        chosen = next((e for e in evals if int(e.get("step") or -1) == step), last)
    return {"chosen": row(chosen), "last": row(last), "chose_last": chosen is last,
            "validation_f1_gain": round(float(chosen[metric]) - float(last[metric]), 6)}
