"""Fine-tune a token-classification model: one training path for `tokclf train` (`train`) and the
pipeline's train stage (`tokclf.pipeline.stages.train`), both through `run_training`.

Order matters and is part of the contract:
1. parameters and machine checks (fp16 without a GPU, unsupported options) — nothing loaded yet;
2. data read and validated — hard errors stop here, nothing written;
3. tokenized once (windows for long sentences, no padding; per-batch padding, length grouping);
4. trained with the Hugging Face Trainer (accelerate underneath); early stopping and the best
   checkpoint are chosen on word-level entity F1 of the validation split, not on the loss;
5. scored on validation (and test for `tokclf train`), outputs written to a staging folder and
   moved into place last.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokclf.core.errors import TokclfError
from tokclf.core.params import TokenClassificationParams
from tokclf.core.phases import mark
from tokclf.data.types import LabelledData
from tokclf.training.epoch_choice import epoch_choice

log = logging.getLogger("tokclf")


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any]
    validation_report: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, Any] | None = None
    # False on the ranks of a distributed run that train but do not write (all but rank 0).
    wrote: bool = True


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
                where="log", fix=f"pip install 'tokclf[{params.log}]' or choose log='tensorboard'.", code="E6006",
            )


def prepare_data(params: TokenClassificationParams, tokenizer: Any = None) -> tuple[LabelledData, Any]:
    """Read and validate; raises ValidationFailed (nothing written) on hard errors."""
    from tokclf.data.ingest import load_from_params
    from tokclf.data.validation import validate_data

    data = load_from_params(params)
    mark("data")
    data, report = validate_data(
        data, train_split=params.train_split, valid_split=params.validation_split(), test_split=params.test_split,
        repair_bio=params.repair_bio, tokenizer=tokenizer, max_seq_length=params.max_seq_length,
    )
    report.raise_for_errors()
    mark("validate")
    return data, report


def tokenize_splits(params: TokenClassificationParams, data: LabelledData, tokenizer: Any,
                    names: list[str], strategy: str) -> dict[str, Any]:
    """Features of the named splits; labels only on the train split (`tokclf.text.features`), aligned
    with `strategy` ("first"/"all": `subword_strategy`'s choice)."""
    from tokclf.text.features import tokenize_split

    return {
        name: tokenize_split(
            data.splits[name], tokenizer, max_seq_length=params.max_seq_length, stride=params.stride,
            strategy=strategy, label_names=data.label_names, with_labels=name == params.train_split,
            document_context=params.document_context,
        )
        for name in names
    }


def subword_strategy(params: TokenClassificationParams, data: LabelledData, tokenizer: Any,
                     *, quiet: bool = False) -> dict[str, Any]:
    """{"param", "chosen", "multi_piece_share"}: subword_labels="auto" decided on the train split's
    words (`tokclf.text.alignment.choose_strategy`); logged, and recorded in training_params.json."""
    from tokclf.text.alignment import split_strategy_record

    record = split_strategy_record(params.subword_labels, tokenizer, data.splits.get(params.train_split))
    if record["multi_piece_share"] is not None and not quiet:
        log.info("subword labels: %r (auto: %.1f%% of the training words split into several pieces)",
                 record["chosen"], 100 * record["multi_piece_share"])
    return record


def _scorer(params: TokenClassificationParams, tokenizer: Any, data: LabelledData, split: str,
            features: Any = None) -> Callable[[Any], dict[str, Any]]:
    """model -> word-level metrics of `split` (features reused when the split was tokenized)."""
    from tokclf.evaluation.scoring import score_sentences

    return functools.partial(
        score_sentences, tokenizer=tokenizer, sentences=data.splits[split], label_names=data.label_names,
        max_seq_length=params.max_seq_length, stride=params.stride, mixed_precision=params.mixed_precision,
        features=features, decoding=params.decoding, document_context=params.document_context,
    )


def run_training(
    params: TokenClassificationParams,
    *,
    data: LabelledData,
    report: Any,
    tokenizer: Any,
    model_path: str,
    features: dict[str, Any],
    subword_labels_chosen: dict[str, Any] | None,
    target: Path,
    score_test: bool,
    on_saved: Callable[[Path, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Fine-tune on `features` (the train split's, and the validation split's when there is one),
    score, and write the model folder `target` (staged, moved into place at the end).

    The folder holds the model, tokenizer and the run's files (`tokclf.publishing.folder`):
    training_params.json, metrics.json (train, validation and, with `score_test`, test),
    training_log.json, validation_report.json and the model card. `on_saved(folder, metrics)` may
    add files before the folder moves into place (the pipeline's run record). Under torchrun /
    `accelerate launch` every rank trains (DDP) and rank 0 alone scores and writes."""
    from tokclf.publishing.folder import write_outputs

    train_name, valid_name, test_name = params.split_roles(data.splits)
    if valid_name is None:
        log.warning(
            "no validation split: training without evaluation or early stopping "
            "(set valid_split or validation_split_ratio to choose the best epoch on F1)"
        )
    from tokclf.training.checkpoints import CHECKPOINTS, training_dir
    from tokclf.training.signals import stop_on_signal
    from tokclf.training.trackers import tracker_env

    # The run folder outlives a crash or a kill: a rerun resumes from its checkpoints
    # (tokclf.training.checkpoints); a signal ends training after a checkpoint (signals).
    with stop_on_signal() as stopper, \
            training_dir(target, resume=params.resume, finishing=stopper.finishing) as (out, writes), \
            tracker_env(params, out):
        trainer, metrics = fit(
            params, data=data, tokenizer=tokenizer, model_path=model_path, train_features=features[train_name],
            valid_features=features.get(valid_name) if valid_name else None, valid_name=valid_name,
            checkpoints=out / CHECKPOINTS, callbacks=[stopper],
        )
        if writes:
            scored = [("validation", valid_name)] + ([("test", test_name)] if score_test else [])
            for role, name in scored:
                if name is None:
                    continue
                reused = trainer.final_scores() if role == "validation" else None
                metrics[role] = dict(reused) if reused is not None else (
                    _scorer(params, tokenizer, data, name, features.get(name))(trainer.model))
                metrics[role]["split"] = name
            mark("scoring")
            try:
                trainer.save_model(str(out))
                tokenizer.save_pretrained(str(out))
                mark("save")
                write_outputs(out, params=params, data=data, report=report, metrics=metrics, model_path=model_path,
                              log_history=trainer.state.log_history,
                              run_facts={"classifier_head": metrics.get("classifier_head"),
                                         "subword_labels_chosen": subword_labels_chosen})
            except Exception as exc:
                _raise_if_disk(exc, out)
                raise
            mark("card")
            if on_saved is not None:
                on_saved(out, metrics)
    if writes:
        log.info("model and metrics written to %s", target)
    return TrainResult(output_dir=target, metrics=metrics, validation_report=report.to_dict(), wrote=writes)


def _raise_if_disk(exc: Exception, out: Path) -> None:
    """A failed write of the model folder because of the disk (full, read-only): a TokclfError that
    says the run's checkpoints are kept (the folder is still the hidden run folder, never the output)."""
    from tokclf.training.checkpoints import write_failure

    problem = write_failure(exc, out)
    if problem is not None:
        raise TokclfError(f"writing the trained model into {out} failed: {problem}; the previous model folder "
                          "is untouched and the run's checkpoints are kept", where=str(out.parent),
                          fix="free disk space (or make the folder writable) and run the same command again: it "
                          "resumes from the last checkpoint.", code="E6008") from None


def fit(
    params: TokenClassificationParams,
    *,
    data: LabelledData,
    tokenizer: Any,
    model_path: str,
    train_features: Any,
    valid_features: Any,
    valid_name: str | None,
    checkpoints: Path,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the base model on tokenized features (`tokclf.text.features.tokenize_split`).

    Returns the Trainer (its state holds the log history; its model is the best checkpoint when
    there was evaluation) and {"train": ..., "best_checkpoint": ...}. Evaluation during training
    scores `valid_name` on words (early stopping and the best checkpoint use its entity F1).
    Checkpoints go to `checkpoints`; `params.resume` chooses the one to continue from
    (`tokclf.training.checkpoints.resume_point`). `callbacks`: more `TrainerCallback`s (the signal
    handler of `run_training`; bench/accuracy.py scores test at every epoch).
    """
    import torch
    from transformers import EarlyStoppingCallback, set_seed

    from tokclf.core.hardware import has_cuda
    from tokclf.training.arguments import (
        training_arguments,
        uses_lazy_embedding_updates,
    )
    from tokclf.training.checkpoints import read_progress, resume_point, run_fingerprint
    from tokclf.training.model_init import load_for_labels
    from tokclf.training.trainer import CheckpointSchedule, DropExtraColumns, TokclfTrainer

    # Before the model is loaded: a refused resume costs nothing.
    fingerprint = run_fingerprint(params, data=data, splits=[params.train_split] + ([valid_name] if valid_name else []),
                                  tokenizer=tokenizer, model_path=model_path)
    resume_from = resume_point(params.resume, checkpoints, fingerprint)
    label_names = data.label_names
    num_labels = data.num_labels
    id2label = {i: (label_names[i] if label_names else f"LABEL_{i}") for i in range(num_labels)}
    set_seed(params.seed)
    # Master weights in fp32 whatever the checkpoint's storage dtype: transformers 5 loads a bf16/fp16
    # checkpoint in that dtype by default, and fine-tuning in pure half precision loses updates.
    # Mixed precision (autocast) is applied by the Trainer on top.
    mark("imports_training")
    model, head = load_for_labels(model_path, id2label=id2label, dtype=torch.float32)
    mark("model_load")
    if params.freeze_word_embeddings:
        # The Trainer's optimizer takes only parameters that require a gradient.
        model.get_input_embeddings().weight.requires_grad_(False)
    sparse = False
    if uses_lazy_embedding_updates(params):
        from tokclf.training import sparse_embeddings

        sparse = sparse_embeddings.enable(model)
        if sparse:
            log.info("word embeddings: row-sparse AdamW updates (lazy_embedding_updates)")
    dropout_state = None
    if params.fast_dropout and not has_cuda():
        from tokclf.training import fast_dropout

        dropout_state = fast_dropout.enable(model)
        log.info("CPU dropout through tokclf.training.fast_dropout (%s)", dropout_state)
    args = training_arguments(params, checkpoints, num_train_features=len(train_features), has_eval=valid_name is not None)
    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids", "labels", "length") if c in train_features.column_names]
    callbacks = [CheckpointSchedule(params.checkpoint_minutes), *callbacks]
    if params.log == "mlflow":
        from tokclf.training.trainer import RecordTrackerRun

        callbacks.append(RecordTrackerRun(checkpoints.parent))
    if valid_name is not None and params.eval_strategy != "no" and params.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(params.early_stopping_patience, params.early_stopping_threshold))
    optimizer_cls_and_kwargs = None
    if sparse:
        from tokclf.training.sparse_embeddings import RowSparseAdamW

        optimizer_cls_and_kwargs = (RowSparseAdamW, TokclfTrainer.get_optimizer_cls_and_kwargs(args)[1])
    scorer = _scorer(params, tokenizer, data, valid_name, valid_features) if valid_name is not None else None
    trainer = TokclfTrainer(
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
        model=model,
        args=args,
        train_dataset=train_features.select_columns(keep),
        # Unused by TokclfTrainer.evaluate; given because Trainer checks one exists when evaluating.
        eval_dataset=valid_features,
        data_collator=DropExtraColumns(tokenizer),
        processing_class=tokenizer,
        callbacks=callbacks,
        scorer=scorer,
        sparse_embeddings=sparse,
        fingerprint=fingerprint,
        per_token_loss=params.loss_weighting == "token",
        length_grouping=params.length_grouping,
    )
    mark("trainer_setup")
    started = time.perf_counter()
    cpu_started = time.process_time()
    # Loss and training time of the processes before this one (a resumed run): metrics cover the run.
    before = read_progress(resume_from)
    trainer.progress_before, trainer.train_started = before, (started, cpu_started)
    if resume_from is not None:
        log.info("resuming from %s (step %s)", resume_from, resume_from.name.rsplit("-", 1)[-1])
    train_output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - started
    mark("training")
    # CPU seconds of this process (all threads): steadier than wall-clock on a shared machine.
    train_cpu_seconds = time.process_time() - cpu_started
    train_loss = float(train_output.training_loss)
    if before:
        # The Trainer's loss is the mean over this process's steps; the run's is over all of them.
        steps_here = trainer.state.global_step - before["steps"]
        train_loss = (before["loss_sum"] + train_loss * steps_here) / max(trainer.state.global_step, 1)
        train_seconds += before["runtime_s"]
        train_cpu_seconds += before["cpu_s"]
    elif resume_from is not None:
        log.info("%s records no progress (an older tokclf): the training loss and time in metrics.json cover "
                 "this process only", resume_from)
    if sparse:
        from tokclf.training import sparse_embeddings

        sparse_embeddings.disable(trainer.model)
    if dropout_state is not None:
        from tokclf.training import fast_dropout

        # The saved and published model runs stock transformers code only.
        fast_dropout.disable(trainer.model, dropout_state)
    sentences = len(data.splits[params.train_split])
    epochs = float(trainer.state.epoch or 0)
    metrics: dict[str, Any] = {
        "train": {
            "runtime_s": round(train_seconds, 2),
            "cpu_s": round(train_cpu_seconds, 2),
            "loss": train_loss,
            "epochs": epochs,
            "steps": int(trainer.state.global_step),
            "sentences": sentences,
            "features": len(train_features),
            "sentences_per_s": round(sentences * epochs / max(train_seconds, 1e-9), 2),
        },
        "best_checkpoint": trainer.state.best_model_checkpoint and Path(trainer.state.best_model_checkpoint).name,
        "classifier_head": head.to_dict(),
    }
    choice = epoch_choice(trainer.state.log_history, trainer.state.best_model_checkpoint)
    if choice is not None:
        metrics["early_stopping"] = choice
    return trainer, metrics


def train(params: TokenClassificationParams) -> TrainResult:
    """Train, evaluate and save a model as `params` describe; returns metrics and output folder."""
    from tokclf.core.fileio import check_target
    from tokclf.core.resources import resolve_model_path
    from tokclf.text.tokenizer import load_tokenizer

    check_runnable(params)
    target = Path(params.project_name).expanduser().resolve()
    check_target(target)
    model_path = resolve_model_path(params.model)
    tokenizer = load_tokenizer(model_path)
    mark("tokenizer")
    data, report = prepare_data(params, tokenizer)
    _, valid_name, _ = params.split_roles(data.splits)
    strategy = subword_strategy(params, data, tokenizer)
    features = tokenize_splits(params, data, tokenizer, [params.train_split] + ([valid_name] if valid_name else []),
                               strategy["chosen"])
    mark("tokenize")
    result = run_training(params, data=data, report=report, tokenizer=tokenizer, model_path=model_path,
                          features=features, subword_labels_chosen=strategy, target=target, score_test=True)
    if params.push_to_hub and result.wrote:
        # After the model is in place: a failed push raises, and the local model stays intact.
        from tokclf.publishing.hub import publish_from_params

        result.publish = publish_from_params(target, params).to_dict()
    return result
