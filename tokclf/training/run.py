"""Fine-tune a token-classification model: the `train(params)` entry point.

Order matters and is part of the contract:
1. parameters and machine checks (fp16 without a GPU, unsupported options) — nothing loaded yet;
2. data read and validated — hard errors stop here, nothing written;
3. tokenized once (windows for long sentences, no padding; per-batch padding, length grouping);
4. trained with the Hugging Face Trainer (accelerate underneath); early stopping and the best
   checkpoint are chosen on word-level entity F1 of the validation split, not on the loss;
5. scored on validation and test, outputs written to a staging folder, moved into place last.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokclf.data.types import LabelledData
from tokclf.core.errors import TokclfError
from tokclf.core.params import TokenClassificationParams

log = logging.getLogger("tokclf")

# Spec optimizer names -> transformers 5 `optim`. `adamw_hf` was removed upstream; both AdamW
# names run torch's fused AdamW kernel (same update rule, one kernel for all parameters):
# measured 1.4x faster training steps on a 2-core CPU for MiniLM (docs/benchmarks.md).
OPTIMIZER_MAP = {"adamw_hf": "adamw_torch_fused", "adamw_torch": "adamw_torch_fused"}
REPORT_TO = {"none": "none", "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any]
    validation_report: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, Any] | None = None


def check_runnable(params: TokenClassificationParams) -> None:
    """Everything that can be refused before touching data or models."""
    from tokclf.core.hardware import check_precision

    if params.push_to_hub:
        # Repo id, token, offline mode and (against the Hub) the token's rights: refused before
        # hours of training rather than after.
        from tokclf.publishing.hub import check_publish_ready

        check_publish_ready(params)
    check_precision(params.mixed_precision)
    if params.log in ("wandb", "mlflow"):
        import importlib.util

        if importlib.util.find_spec(params.log) is None:
            raise TokclfError(
                f"log={params.log!r} needs the {params.log} package, which is not installed",
                where="log", fix=f"pip install 'tokclf[{params.log}]' or choose log='tensorboard'.",
            )


def auto_logging_steps(num_train_features: int, params: TokenClassificationParams) -> int:
    """About five log lines per epoch (the spec's -1 = auto)."""
    steps_per_epoch = math.ceil(num_train_features / (params.batch_size * params.gradient_accumulation))
    return max(1, steps_per_epoch // 5)


def training_arguments(params: TokenClassificationParams, output_dir: Path, *, num_train_features: int, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    from tokclf.core.hardware import has_cuda

    logging_steps = params.logging_steps if params.logging_steps > 0 else auto_logging_steps(num_train_features, params)
    eval_strategy = params.eval_strategy if has_eval else "no"
    eval_steps = params.eval_steps or logging_steps
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=max(params.batch_size, 32),
        num_train_epochs=params.epochs,
        learning_rate=params.lr,
        # transformers 5 reads a float < 1 here as a ratio of the total steps (warmup_ratio is gone).
        warmup_steps=float(params.warmup_ratio),
        gradient_accumulation_steps=params.gradient_accumulation,
        optim=OPTIMIZER_MAP.get(params.optimizer, params.optimizer),
        lr_scheduler_type=params.scheduler,
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        seed=params.seed,
        data_seed=params.seed,
        bf16=params.mixed_precision == "bf16",
        fp16=params.mixed_precision == "fp16",
        use_cpu=not has_cuda(),
        auto_find_batch_size=params.auto_find_batch_size,
        logging_strategy="steps",
        logging_steps=logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps if eval_strategy == "steps" else None,
        save_strategy=eval_strategy if eval_strategy != "no" else "no",
        save_steps=eval_steps if eval_strategy == "steps" else None,
        save_total_limit=params.save_total_limit,
        save_only_model=True,
        load_best_model_at_end=eval_strategy != "no",
        metric_for_best_model="f1" if eval_strategy != "no" else None,
        greater_is_better=True if eval_strategy != "no" else None,
        report_to=REPORT_TO[params.log],
        run_name=Path(params.project_name).name,
        # Padding per batch and grouping by length: most of the speed-up over pad-to-max training.
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


class _DropExtraColumns:
    """Collator wrapper: pads per batch, drops our bookkeeping columns (length) before the model."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForTokenClassification

        from tokclf.core.hardware import has_cuda

        # Multiples of 8 suit GPU tensor cores; on a CPU the extra padding is only extra work
        # (1.06x faster steps without it, bench/step_variants.py).
        self.inner = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8 if has_cuda() else None)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self.inner([{k: v for k, v in r.items() if k != "length"} for r in rows])


def mean_tokens_per_step(labels: Any, step_size: int) -> float:
    """Labelled (not -100) tokens per optimizer step, averaged over an epoch of `step_size` features
    per step: the constant the training loss is divided by when batches are grouped by length."""
    total = sum(sum(1 for x in row if x != -100) for row in labels)
    steps = max(1, math.ceil(len(labels) / step_size))
    return max(total / steps, 1.0)


def tokclf_batching(args: Any) -> bool:
    """Batches grouped by length on one process: tokclf's own batch order (tokclf.training.sampling) and
    per-token loss apply. Under DDP transformers' distributed length-grouped sampler and its
    loss run unchanged."""
    return args.train_sampling_strategy == "group_by_length" and args.world_size <= 1


def _make_trainer_class():
    from transformers import Trainer

    class TokclfTrainer(Trainer):
        """Evaluation is ours: word-level, windows merged, in sentence order (the stock loop would
        score subword pieces, and in transformers 5 it reorders eval batches by length)."""

        scorer: Any = None
        sparse_embeddings: bool = False

        def _get_train_sampler(self, train_dataset=None):
            # Length-grouped batches in shuffled order (tokclf.training.sampling) on one process; under
            # DDP transformers' distributed length-grouped sampler shards the data.
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if (tokclf_batching(self.args) and dataset is not None
                    and self.args.length_column_name in getattr(dataset, "column_names", ())):
                from tokclf.training.sampling import ShuffledLengthGroupedSampler

                batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
                return ShuffledLengthGroupedSampler(dataset[self.args.length_column_name], batch)
            return super()._get_train_sampler(train_dataset)

        tokens_per_step: float | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Batches grouped by length hold very different numbers of labelled tokens (16 table
            # rows vs 16 long sentences); the stock loss, a mean over each batch's tokens, gives a
            # token in a short batch several times the weight of one in a long batch. Here the
            # summed loss is divided by the epoch's mean labelled tokens per optimizer step, so
            # every token weighs the same, as in randomly mixed batches on average.
            if not (self.tokens_per_step and model.training and "labels" in inputs):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            import torch

            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="sum"
            ) / self.tokens_per_step
            return (loss, outputs) if return_outputs else loss

        # torch's clip_grad_norm_ has no norm kernel for sparse gradients (lazy embedding updates).
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
            start = time.perf_counter()
            full = self.scorer(self.model)
            metrics = {k.replace("eval_", f"{metric_key_prefix}_", 1): v for k, v in flat_scalars_eval(full).items()}
            metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 4)
            metrics["epoch"] = self.state.epoch
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return TokclfTrainer


def flat_scalars_eval(metrics: dict[str, Any]) -> dict[str, float]:
    from tokclf.evaluation.scoring import flat_scalars

    return flat_scalars(metrics, "eval")


@contextlib.contextmanager
def _tracker_env(params: TokenClassificationParams, out: Path) -> Iterator[None]:
    """Experiment trackers write beside/inside the output and never reach for the network.
    Trackers are configured through environment variables; they are restored afterwards so one
    run's settings do not leak into the next run in the same process."""
    env: dict[str, str] = {}
    if params.log == "tensorboard":
        env["TENSORBOARD_LOGGING_DIR"] = str(out / "runs")
    elif params.log == "mlflow":
        # One SQLite store beside the output folders, so runs of several projects compare in
        # `mlflow ui --backend-store-uri sqlite:///<that file>` (MLflow's file store is deprecated).
        target = Path(params.project_name).expanduser().resolve()
        env["MLFLOW_TRACKING_URI"] = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{target.parent / 'mlflow.db'}"
        env["MLFLOW_EXPERIMENT_NAME"] = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "tokclf"
    elif params.log == "wandb":
        env["WANDB_MODE"] = os.environ.get("WANDB_MODE") or "offline"
        env["WANDB_DIR"] = os.environ.get("WANDB_DIR") or str(out)
        env["WANDB_SILENT"] = "true"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare_data(params: TokenClassificationParams, tokenizer: Any = None) -> tuple[LabelledData, Any]:
    """Read and validate; raises ValidationFailed (nothing written) on hard errors."""
    from tokclf.data.ingest import load_from_params
    from tokclf.data.validation import validate_data

    data = load_from_params(params)
    valid_split = params.valid_split
    if valid_split is None and params.validation_split_ratio is not None:
        valid_split = "validation"
    data, report = validate_data(
        data, train_split=params.train_split, valid_split=valid_split, test_split=params.test_split,
        repair_bio=params.repair_bio, tokenizer=tokenizer, max_seq_length=params.max_seq_length,
    )
    report.raise_for_errors()
    return data, report


def split_names(params: TokenClassificationParams, data: LabelledData) -> tuple[str, str | None, str | None]:
    valid = params.valid_split
    if valid is None and params.validation_split_ratio is not None:
        valid = "validation"
    test = params.test_split if params.test_split in data.splits else None
    return params.train_split, valid if valid in data.splits else None, test


@dataclass
class FitResult:
    """What `fit` leaves: the Trainer (its state holds the log history), the fine-tuned model (best
    checkpoint loaded when there was evaluation) and metrics {"train": ..., "best_checkpoint": ...}."""

    trainer: Any
    model: Any
    metrics: dict[str, Any]


def use_lazy_embedding_updates(params: TokenClassificationParams) -> bool:
    """Row-sparse embedding updates: asked for, CPU, one process, AdamW, embeddings trained."""
    from tokclf.core.hardware import distributed_rank, has_cuda

    # Sparse gradients are not reduced by DDP's default bucketing and not handled by GradScaler.
    single = distributed_rank()[1] == 1
    return (params.lazy_embedding_updates and not has_cuda() and single and not params.freeze_word_embeddings
            and params.optimizer in OPTIMIZER_MAP)


def _enable_sparse_embeddings(model: Any) -> bool:
    from tokclf.training import sparse_embeddings

    enabled = sparse_embeddings.enable(model)
    if enabled:
        log.info("word embeddings: row-sparse AdamW updates (lazy_embedding_updates)")
    return enabled


def eval_kwargs_for(params: TokenClassificationParams) -> dict[str, Any]:
    """Keyword arguments of `tokclf.evaluation.scoring.score_sentences` for a run's parameters."""
    return dict(
        max_seq_length=params.max_seq_length, stride=params.stride,
        batch_size=max(params.batch_size, 32), mixed_precision=params.mixed_precision,
    )


def fit(
    params: TokenClassificationParams,
    *,
    data: LabelledData,
    tokenizer: Any,
    model_path: str,
    train_name: str,
    valid_name: str | None,
    train_features: Any,
    valid_features: Any,
    out: Path,
) -> FitResult:
    """Fine-tune the base model on tokenized features (`tokclf.text.features.tokenize_split`).

    Shared by `train` and the pipeline's train stage (`tokclf.pipeline.stages.train`). Checkpoints go to
    `out/checkpoints` (removed by `save_run`); evaluation during training scores `valid_name` on
    words (early stopping and the best checkpoint use its entity F1). Call inside `_tracker_env`.
    """
    import torch
    from transformers import AutoModelForTokenClassification, EarlyStoppingCallback, set_seed

    from tokclf.evaluation.scoring import score_sentences
    from tokclf.core.hardware import has_cuda

    label_names = data.label_names
    num_labels = data.num_labels
    id2label = {i: (label_names[i] if label_names else f"LABEL_{i}") for i in range(num_labels)}
    set_seed(params.seed)
    # Master weights in fp32 whatever the checkpoint's storage dtype: transformers 5 loads a bf16/fp16
    # checkpoint in that dtype by default, and fine-tuning in pure half precision loses updates.
    # Mixed precision (autocast) is applied by the Trainer on top.
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True, dtype=torch.float32,
    )
    if params.freeze_word_embeddings:
        # The Trainer's optimizer takes only parameters that require a gradient.
        model.get_input_embeddings().weight.requires_grad_(False)
    sparse_embeddings = use_lazy_embedding_updates(params) and _enable_sparse_embeddings(model)
    dropout_state = None
    if params.fast_dropout and not has_cuda():
        from tokclf.training import fast_dropout

        dropout_state = fast_dropout.enable(model)
        log.info("CPU dropout through tokclf.training.fast_dropout (%s)", dropout_state)
    eval_kwargs = eval_kwargs_for(params)
    checkpoints = out / "checkpoints"
    args = training_arguments(params, checkpoints, num_train_features=len(train_features), has_eval=valid_name is not None)
    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids", "labels", "length") if c in train_features.column_names]
    trainer_cls = _make_trainer_class()
    callbacks = []
    if valid_name is not None and params.eval_strategy != "no" and params.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(params.early_stopping_patience, params.early_stopping_threshold))
    optimizer_cls_and_kwargs = None
    if sparse_embeddings:
        from tokclf.training.sparse_embeddings import RowSparseAdamW

        optimizer_cls_and_kwargs = (RowSparseAdamW, trainer_cls.get_optimizer_cls_and_kwargs(args)[1])
    trainer = trainer_cls(
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
        model=model,
        args=args,
        train_dataset=train_features.select_columns(keep),
        # Unused by our evaluate(); given because Trainer checks one exists when evaluating.
        eval_dataset=valid_features,
        data_collator=_DropExtraColumns(tokenizer),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.sparse_embeddings = sparse_embeddings
    if tokclf_batching(args):
        trainer.tokens_per_step = mean_tokens_per_step(
            train_features["labels"], args.per_device_train_batch_size * args.gradient_accumulation_steps)
        if trainer.tokens_per_step:
            # The loss is already normalised per optimizer step: no further division by the
            # gradient accumulation steps.
            trainer.loss_is_scaled_for_ga = True
    trainer.scorer = lambda m: score_sentences(
        m, tokenizer, data.splits[valid_name], label_names, features=valid_features, **eval_kwargs
    )
    started = time.perf_counter()
    cpu_started = time.process_time()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - started
    # CPU seconds of this process (all threads): steadier than wall-clock on a shared machine.
    train_cpu_seconds = time.process_time() - cpu_started
    if sparse_embeddings:
        from tokclf.training import sparse_embeddings as sparse

        sparse.disable(trainer.model)
    if dropout_state is not None:
        from tokclf.training import fast_dropout

        # The saved and published model runs stock transformers code only.
        fast_dropout.disable(trainer.model, dropout_state)
    metrics: dict[str, Any] = {
        "train": {
            "runtime_s": round(train_seconds, 2),
            "cpu_s": round(train_cpu_seconds, 2),
            "loss": float(train_output.training_loss),
            "epochs": float(trainer.state.epoch or 0),
            "steps": int(trainer.state.global_step),
            "sentences": len(data.splits[train_name]),
            "features": len(train_features),
            "sentences_per_s": round(len(data.splits[train_name]) * float(trainer.state.epoch or 0) / max(train_seconds, 1e-9), 2),
        },
        "best_checkpoint": trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint).name,
    }
    return FitResult(trainer=trainer, model=trainer.model, metrics=metrics)


def save_run(
    out: Path,
    fitted: FitResult,
    *,
    tokenizer: Any,
    params: TokenClassificationParams,
    data: LabelledData,
    report: Any,
    metrics: dict[str, Any],
    model_path: str,
) -> None:
    """Model, tokenizer and the run's files (tokclf.publishing.folder) into the staging folder `out`."""
    from tokclf.publishing.folder import write_outputs

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    fitted.trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    write_outputs(
        out, params=params, data=data, report=report, metrics=metrics, model_path=model_path,
        log_history=fitted.trainer.state.log_history,
    )


def train(params: TokenClassificationParams) -> TrainResult:
    """Train, evaluate and save a model as `params` describe; returns metrics and output folder."""
    from tokclf.evaluation.scoring import score_sentences
    from tokclf.text.features import tokenize_split
    from tokclf.core.resources import resolve_model_path
    from tokclf.core.fileio import check_target, staged_dir
    from tokclf.text.tokenizer import load_tokenizer

    check_runnable(params)
    check_target(Path(params.project_name).expanduser().resolve())
    model_path = resolve_model_path(params.model)
    tokenizer = load_tokenizer(model_path)
    data, report = prepare_data(params, tokenizer)
    train_name, valid_name, test_name = split_names(params, data)
    if valid_name is None:
        log.warning(
            "no validation split: training without evaluation or early stopping "
            "(set valid_split or validation_split_ratio to choose the best epoch on F1)"
        )
    label_names = data.label_names

    def features_for(name: str, with_labels: bool) -> Any:
        return tokenize_split(
            data.splits[name], tokenizer, max_seq_length=params.max_seq_length, stride=params.stride,
            strategy=params.subword_labels, label_names=label_names, with_labels=with_labels,
        )

    train_features = features_for(train_name, True)
    valid_features = features_for(valid_name, False) if valid_name else None
    eval_kwargs = eval_kwargs_for(params)

    with staged_dir(params.project_name) as out, _tracker_env(params, out):
        fitted = fit(
            params, data=data, tokenizer=tokenizer, model_path=model_path, train_name=train_name,
            valid_name=valid_name, train_features=train_features, valid_features=valid_features, out=out,
        )
        model = fitted.model
        metrics = fitted.metrics
        if valid_name:
            metrics["validation"] = score_sentences(
                model, tokenizer, data.splits[valid_name], label_names, features=valid_features, **eval_kwargs
            )
            metrics["validation"]["split"] = valid_name
        if test_name:
            metrics["test"] = score_sentences(model, tokenizer, data.splits[test_name], label_names, **eval_kwargs)
            metrics["test"]["split"] = test_name
        save_run(out, fitted, tokenizer=tokenizer, params=params, data=data, report=report, metrics=metrics,
                 model_path=model_path)
    output_dir = Path(params.project_name).expanduser().resolve()
    log.info("model and metrics written to %s", output_dir)
    published = None
    if params.push_to_hub:
        # After the model is in place: a failed push raises, and the local model stays intact.
        from tokclf.publishing.hub import publish_from_params

        published = publish_from_params(output_dir, params).to_dict()
    return TrainResult(output_dir=output_dir, metrics=metrics, validation_report=report.to_dict(), publish=published)
