"""`TokclfTrainer`: the Hugging Face Trainer with tokclf's batch order, loss and evaluation.

- Batches are grouped by length, then shuffled (`tokclf.training.sampling`), on one process;
  under DDP transformers' distributed length-grouped sampler shards the data.
- With `loss_weighting="token"` the training loss is summed over labelled tokens and divided by
  the epoch's mean labelled tokens per optimizer step (`tokens_per_step`), so every token weighs
  the same whatever the length of the batch it was grouped into; "batch" keeps the stock mean.
- With row-sparse word-embedding updates (`tokclf.training.sparse_embeddings`) gradient clipping
  and the logged norm go through tokclf (torch's clip_grad_norm_ has no sparse kernel).
- Checkpoints are written atomically (`_save_checkpoint`: into `checkpoints/.partial`, a
  manifest last, then renamed; `tokclf.training.checkpoints`), so `save_total_limit` and resuming
  only ever see complete ones.
- Evaluation is word level, windows merged, in sentence order (`scorer`: the stock loop would
  score subword pieces, and in transformers 5 it reorders eval batches by length).

This module imports transformers at the top: import it only to train.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer, TrainerCallback


def mean_tokens_per_step(labels: Any, step_size: int) -> float:
    """Labelled (not -100) tokens per optimizer step, averaged over an epoch of `step_size` features
    per step: the constant the training loss is divided by when batches are grouped by length.
    `labels`: per-feature label lists, or the features' Arrow column (counted in Arrow, chunk by
    chunk: no Python list per row, so millions of rows start training in about a second)."""
    import pyarrow as pa

    if isinstance(labels, (pa.ChunkedArray, pa.Array)):
        import pyarrow.compute as pc

        chunks = labels.chunks if isinstance(labels, pa.ChunkedArray) else [labels]
        total = sum(int(pc.sum(pc.not_equal(pc.list_flatten(c), -100)).as_py() or 0) for c in chunks)
        rows = len(labels)
    else:
        total = sum(sum(1 for x in row if x != -100) for row in labels)
        rows = len(labels)
    steps = max(1, math.ceil(rows / step_size))
    return max(total / steps, 1.0)


def arrow_column(dataset: Any, name: str) -> Any:
    """One column of a datasets.Dataset as Arrow (memory-mapped when the dataset is), in row order."""
    return dataset.select_columns([name]).with_format("arrow")[:].column(name)


def tokclf_batching(args: Any) -> bool:
    """Batches grouped by length on one process: tokclf's own batch order (tokclf.training.sampling)
    applies. Under DDP transformers' distributed length-grouped sampler runs unchanged."""
    return args.train_sampling_strategy == "group_by_length" and args.world_size <= 1


class DropExtraColumns:
    """Collator: pads per batch and drops tokclf's bookkeeping columns (length) before the model."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForTokenClassification

        from tokclf.core.hardware import has_cuda

        # Multiples of 8 suit GPU tensor cores; on a CPU the extra padding is only extra work
        # (1.06x faster steps without it, bench/step_variants.py).
        self.inner = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8 if has_cuda() else None)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self.inner([{k: v for k, v in r.items() if k != "length"} for r in rows])


class CheckpointSchedule(TrainerCallback):
    """A checkpoint at every epoch end and at least every `minutes` of training (on the first
    optimizer step after that much time since the last one), whatever the evaluation schedule."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.last = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.last >= self.seconds:
            control.should_save = True

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        self.last = time.monotonic()


class RecordTrackerRun(TrainerCallback):
    """Write the MLflow run id into the run folder once the tracker has started it (the tracker
    callbacks run before this one), so a resumed run continues it (tokclf.training.trackers)."""

    def __init__(self, run_folder: Any) -> None:
        self.run_folder = run_folder

    def on_train_begin(self, args, state, control, **kwargs):
        import mlflow

        from tokclf.training.checkpoints import update_run_file

        run = mlflow.active_run()
        if run is not None and args.should_save:
            update_run_file(self.run_folder, mlflow_run_id=run.info.run_id)


class TokclfTrainer(Trainer):
    """See the module docstring.

    scorer: model -> metrics dict of the validation split (`tokclf.evaluation.scoring`), or None
        when the run has no validation split.
    sparse_embeddings: the word embeddings get row-sparse gradients (clipping through tokclf).
    length_grouping: batches per length-sorted group of the batch order (`length_grouping`).
    per_token_loss: the per-token loss (`loss_weighting="token"`) on one process; else the stock
        mean loss per batch. Under DDP the stock loss always runs.
    """

    def __init__(self, *args: Any, scorer: Callable[[Any], dict[str, Any]] | None = None,
                 sparse_embeddings: bool = False, fingerprint: dict[str, Any] | None = None,
                 per_token_loss: bool = True, length_grouping: int = 50, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scorer = scorer
        # What a run resuming from this run's checkpoints must match (written into each one).
        self.fingerprint = fingerprint or {}
        # The run's progress before this process (checkpoints.read_progress) and when this process
        # began training (perf_counter, process_time): set by run.fit.
        self.progress_before: dict[str, float] = {}
        self.train_started: tuple[float, float] | None = None
        self._partial_root: str | None = None
        # Full scores of every evaluation by global step: the run's final validation scores are
        # those of the evaluation of the model it ends with, not a second pass over the split.
        self.scores_by_step: dict[int, dict[str, Any]] = {}
        self.sparse_embeddings = sparse_embeddings
        self.length_grouping = length_grouping
        self.tokens_per_step: float | None = None
        dataset = self.train_dataset
        if (per_token_loss and self.args.world_size <= 1 and dataset is not None
                and "labels" in dataset.column_names):
            self.tokens_per_step = mean_tokens_per_step(
                arrow_column(dataset, "labels"),
                self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps)
            # The loss is already normalised per optimizer step: no further division by the
            # gradient accumulation steps.
            self.loss_is_scaled_for_ga = True

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if (tokclf_batching(self.args) and dataset is not None
                and self.args.length_column_name in getattr(dataset, "column_names", ())):
            from tokclf.training.sampling import ShuffledLengthGroupedSampler

            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            lengths = arrow_column(dataset, self.args.length_column_name).to_numpy()
            # Seeded per epoch (not from the global generator): a resumed run rebuilds the order.
            return ShuffledLengthGroupedSampler(
                lengths, batch, seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
                mega_batch_mult=self.length_grouping)
        return super()._get_train_sampler(train_dataset)

    def _get_output_dir(self, trial):
        # While a checkpoint is being written, the Trainer writes it under the partial folder.
        return self._partial_root or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        """The Trainer's checkpoint, written under `checkpoints/.partial/` with a manifest last,
        then renamed to `checkpoints/checkpoint-STEP`: a kill mid-write never leaves a
        half-written folder under a checkpoint name. Rotation (save_total_limit) runs after the
        rename, over complete checkpoints only."""
        import shutil
        from pathlib import Path

        from transformers.trainer_utils import rotate_checkpoints

        from tokclf.training.checkpoints import PARTIAL, write_manifest

        run_dir = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        final, partial_root = run_dir / name, run_dir / PARTIAL
        if self.state.global_step == getattr(self, "_last_saved", None):
            return  # already saved at this step (an epoch end and a signal on the same step)
        if self.args.should_save:
            shutil.rmtree(partial_root, ignore_errors=True)
        save_total_limit = self.args.save_total_limit
        self._partial_root = str(partial_root)
        try:
            super()._save_checkpoint(model, trial)
        except Exception as exc:  # disk full, folder made read-only, quota
            from tokclf.core.errors import TokclfError
            from tokclf.training.checkpoints import write_failure

            problem = write_failure(exc, run_dir)
            shutil.rmtree(partial_root, ignore_errors=True)
            if problem is None:
                raise
            raise TokclfError(
                f"writing the checkpoint at step {self.state.global_step} failed: {problem} "
                f"({getattr(exc, 'filename', None) or partial_root}); the earlier checkpoints are intact",
                where=str(run_dir), fix="free disk space (or make the folder writable) and run the same command "
                "again to resume from the last complete checkpoint.", code="E6007") from None
        finally:
            self._partial_root = None
        # The Trainer looked for the best checkpoint under the partial folder: name the real one
        # (a resumed run loads it at the end) and rewrite the state that records it.
        if self.state.best_global_step:
            best = run_dir / f"checkpoint-{self.state.best_global_step}"
            if best.exists() or self.state.best_global_step == self.state.global_step:
                self.state.best_model_checkpoint = str(best)
        if self.args.should_save:
            self.state.save_to_json(str(partial_root / name / "trainer_state.json"))
        self.accelerator.wait_for_everyone()  # every rank's RNG file is in before the rename
        if self.args.should_save:
            write_manifest(partial_root / name, self.fingerprint, self.progress())
            if final.exists():
                shutil.rmtree(final)
            os.replace(partial_root / name, final)
            shutil.rmtree(partial_root, ignore_errors=True)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()
        self._last_saved = self.state.global_step

    def progress(self) -> dict[str, float] | None:
        """The run's progress at this step over all its processes (checkpoints.read_progress): what
        the checkpoint resumed from recorded (`progress_before`) plus this process's share. The
        loss: the Trainer's sum of logged windows plus the window not logged yet (`_tr_loss`, this
        rank's under DDP). None before `train_started` is set (fit sets both)."""
        if self.train_started is None or not self.progress_before:
            return None
        wall, cpu = self.train_started
        pending = getattr(self, "_tr_loss", None)
        loss = float(getattr(self, "_total_loss_scalar", 0.0)) + (float(pending) if pending is not None else 0.0)
        before = self.progress_before
        return {"steps": int(self.state.global_step), "loss_sum": before["loss_sum"] + loss,
                "runtime_s": before["runtime_s"] + time.perf_counter() - wall,
                "cpu_s": before["cpu_s"] + time.process_time() - cpu}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Batches grouped by length hold very different numbers of labelled tokens (16 table
        # rows vs 16 long sentences); the stock loss, a mean over each batch's tokens, gives a
        # token in a short batch several times the weight of one in a long batch.
        if not (self.tokens_per_step and model.training and "labels" in inputs):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="sum"
        ) / self.tokens_per_step
        return (loss, outputs) if return_outputs else loss

    def final_scores(self) -> dict[str, Any] | None:
        """The evaluation scores of the model training ended with (the best checkpoint when it was
        loaded at the end, else the last step's model), or None when that model was not evaluated."""
        state = self.state
        best = self.args.load_best_model_at_end and state.best_model_checkpoint and state.best_global_step
        return self.scores_by_step.get(state.best_global_step if best else state.global_step)

    def _clip_grad_norm(self, model):
        if self.sparse_embeddings:
            from tokclf.training.sparse_embeddings import clip_grad_norm

            return clip_grad_norm(model.parameters(), self.args.max_grad_norm)
        return super()._clip_grad_norm(model)

    def _get_grad_norm(self, model, grad_norm=None):
        if self.sparse_embeddings and grad_norm is None:
            from tokclf.training.sparse_embeddings import total_grad_norm

            return total_grad_norm(model.parameters())
        return super()._get_grad_norm(model, grad_norm)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        from tokclf.evaluation.scoring import flat_scalars

        if self.scorer is None:
            raise RuntimeError("TokclfTrainer.evaluate needs a scorer (the run has no validation split)")
        start = time.perf_counter()
        scores = self.scorer(self.model)
        self.scores_by_step[self.state.global_step] = scores
        metrics = flat_scalars(scores, metric_key_prefix)
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 4)
        metrics["epoch"] = self.state.epoch
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
