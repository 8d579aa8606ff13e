"""Prefect flows of tokclf (they chain the tasks of `tasks/`; the logic is in tokclf.pipeline.stages).

    training_flow    `token-classification`: ingest -> validate -> tokenize -> train -> evaluate -> publish
    retraining_flow  `token-classification-retrain`: retrain only when data or parameters changed
    annotation_loop_flow  `token-classification-annotation-loop`: Label Studio export -> retrain when
                     the annotations changed -> pre-annotations for the tasks without any

Run from the repository root: `python -m flows run`, `python -m flows retrain`, `python -m flows annotate`,
`python -m flows serve`.
"""

from __future__ import annotations

__all__ = ["training_flow", "retraining_flow", "annotation_loop_flow"]


def __getattr__(name: str):
    # Lazy: `python -m flows serve` should not import torch before it needs to.
    if name == "training_flow":
        from flows.training import training_flow

        return training_flow
    if name == "retraining_flow":
        from flows.retraining import retraining_flow

        return retraining_flow
    if name == "annotation_loop_flow":
        from flows.annotation import annotation_loop_flow

        return annotation_loop_flow
    raise AttributeError(name)
