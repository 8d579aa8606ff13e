"""The baseline recipe tokclf is measured against: AutoTrain Advanced's token-classification trainer
approach, reproduced in a few lines so it runs side by side with tokclf on the same data.

What makes it the baseline (and slow):
- a torch Dataset that tokenizes each item on every access (every epoch), with
- padding to max_seq_length (128) for every item, no length grouping,
- fp32 (no autocast), stock `adamw_torch`, the stock Trainer loop and its subword-level eval.
Labels: every subword gets its word's tag (AutoTrain's alignment). The model is scored by tokclf's
word-level evaluation afterwards, so both are compared on the same metric.
"""

from __future__ import annotations

import time
from typing import Any


class PerItemPaddedDataset:
    """Tokenizes on __getitem__ and pads to max_length (the AutoTrain TokenClassificationDataset)."""

    def __init__(self, sentences: Any, tokenizer: Any, max_length: int) -> None:
        self.tokens = sentences["tokens"]
        self.tags = sentences["tags"]
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, Any]:
        enc = self.tokenizer(
            self.tokens[i], is_split_into_words=True, truncation=True, padding="max_length", max_length=self.max_length
        )
        word_ids = enc.word_ids()
        labels = [-100 if w is None else self.tags[i][w] for w in word_ids]
        enc["labels"] = labels
        return {k: v for k, v in enc.items()}


def train_baseline(sentences: Any, model_path: str, num_labels: int, out_dir: str, *, epochs: int, lr: float,
                   batch_size: int, max_length: int, seed: int) -> Any:
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    from tokclf.text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=num_labels, ignore_mismatched_sizes=True, dtype=torch.float32
    )
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=batch_size, num_train_epochs=epochs, learning_rate=lr,
        warmup_steps=0.1, optim="adamw_torch", seed=seed, save_strategy="no", eval_strategy="no", report_to="none",
        use_cpu=not torch.cuda.is_available(), logging_steps=50, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=PerItemPaddedDataset(sentences, tokenizer, max_length),
                      data_collator=default_data_collator)
    cpu = time.process_time()
    trainer.train()
    trainer.cpu_seconds = time.process_time() - cpu
    return trainer.model, tokenizer, trainer.cpu_seconds
