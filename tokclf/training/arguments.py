"""The spec's parameters as transformers 5 `TrainingArguments`.

Two spec options no longer exist upstream and are mapped here:
- `optimizer="adamw_hf"`: transformers' own AdamW was removed; both AdamW names run torch's fused
  AdamW kernel (the same decoupled-weight-decay update, one kernel for all parameters: measured
  1.4x faster training steps on a 2-core CPU for MiniLM, docs/benchmarks.md).
- `warmup_ratio`: the TrainingArguments field is gone; a float `warmup_steps` < 1 is read as a
  ratio of the total steps by transformers 5, so the ratio is passed there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tokclf.core.params import TokenClassificationParams

OPTIMIZER_MAP = {"adamw_hf": "adamw_torch_fused", "adamw_torch": "adamw_torch_fused"}
REPORT_TO = {"none": "none", "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


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
        num_train_epochs=params.epochs,
        learning_rate=params.lr,
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
        # Checkpoints are for resuming (tokclf.training.checkpoints): at least every epoch end,
        # with the optimizer, scheduler, RNG and callback states; more often by time
        # (checkpoint_minutes, tokclf.training.trainer.CheckpointSchedule).
        save_strategy=eval_strategy if eval_strategy != "no" else "epoch",
        save_steps=eval_steps if eval_strategy == "steps" else None,
        save_total_limit=params.save_total_limit,
        save_only_model=False,
        restore_callback_states_from_checkpoint=True,
        load_best_model_at_end=eval_strategy != "no",
        metric_for_best_model="f1" if eval_strategy != "no" else None,
        greater_is_better=True if eval_strategy != "no" else None,
        report_to=REPORT_TO[params.log],
        run_name=Path(params.project_name).name,
        # Padding per batch and grouping by length: most of the speed-up over pad-to-max training.
        train_sampling_strategy="group_by_length" if params.batch_order == "length_grouped" else "random",
        length_column_name="length",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def uses_lazy_embedding_updates(params: TokenClassificationParams) -> bool:
    """Row-sparse embedding updates: asked for, CPU, one process, AdamW, embeddings trained."""
    from tokclf.core.hardware import distributed_rank, has_cuda

    # Sparse gradients are not reduced by DDP's default bucketing and not handled by GradScaler.
    single = distributed_rank()[1] == 1
    return (params.lazy_embedding_updates and not has_cuda() and single and not params.freeze_word_embeddings
            and params.optimizer in OPTIMIZER_MAP)
