"""Training parameters: the AutoTrain token-classification spec, checked at load time.

Every spec parameter keeps its name and default. A handful of additions (marked "tokclf:") cover
what the spec leaves implicit: test split, label names for integer tags, windowing stride, CoNLL
column choice, the subword label strategy and BIO repair.

Two spec options no longer exist upstream in transformers 5 and are mapped (see
`tokclf.training.run.training_arguments`):
- `optimizer="adamw_hf"`: transformers' own AdamW was removed; it is mapped to `adamw_torch`
  (the same decoupled-weight-decay update, torch's implementation).
- `warmup_ratio`: the TrainingArguments field is gone; a float `warmup_steps` < 1 is read as a
  ratio by transformers 5, so the ratio is passed there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tokclf.core.errors import ParamsError

# Window defaults: model inputs per window (special tokens included) and the overlap between the
# windows of a long sentence, in subword pieces. Also what predict/evaluate assume for a model
# folder that does not record them (tokclf.inference.loading.window_settings).
DEFAULT_MAX_SEQ_LENGTH = 128
DEFAULT_STRIDE = 32
# The split a validation_split_ratio carves from train (tokclf.data.ingest names it so).
CARVED_VALIDATION_SPLIT = "validation"
# Keys that do not change the trained model: left out of its parameter hash (tokclf.pipeline.keys)
# and of what a resumed run must match (tokclf.training.checkpoints).
NOT_TRAINING_KEYS = frozenset({
    "project_name", "push_to_hub", "username", "token", "log", "hub_private", "publish_tolerance",
    "force_publish", "resume", "checkpoint_minutes",
})
# Keys never written to disk or logs (see `public_dict`).
SECRET_KEYS = frozenset({"token"})


class TokenClassificationParams(BaseModel):
    """All parameters of one training run. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # --- required / data -------------------------------------------------------------------------
    data_path: str | list[str] = Field(
        description="Training data: a file, a folder, a saved HF dataset or a Hub dataset id; several sources: "
        "repeat --data-path (or a YAML list), their sentences are concatenated split by split.")
    model: str = Field(default="bert-base-uncased", description="Model name (Hub id) or local path.")
    project_name: str = Field(description="Output directory for the trained model.")
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    train_split: str = "train"
    valid_split: str | None = None
    max_samples: int | None = Field(default=None, ge=1, description="Keep at most this many sentences per split.")

    # tokclf: data additions
    test_split: str | None = Field(default="test", description="Scored after training when the data has it.")
    label_names: list[str] | str | None = Field(
        default=None, description="Names for integer tags: a list, a comma-separated string or a file with one per line."
    )
    conll_token_column: int = Field(default=0, description="CoNLL column files: 0-based token column.")
    conll_tag_column: int = Field(default=-1, description="CoNLL column files: 0-based tag column (-1 = last).")
    conllu_tag: Literal["upos", "xpos"] = Field(default="upos", description="CoNLL-U: which column is the tag.")
    repair_bio: bool = Field(default=False, description="Rewrite stray I-X tags to IOB2 (B-X) instead of only reporting them.")
    # tokclf: span annotation formats (Label Studio, doccano, Prodigy, brat, spaCy; tokclf/data/formats)
    data_format: Literal["auto", "tags", "labelstudio", "doccano", "prodigy", "brat", "spacy"] = Field(
        default="auto",
        description="How to read data_path: auto (from the file's content), tags (tokens/tags data), or a span "
        "annotation export.")
    span_alignment: Literal["expand", "contract", "strict"] = Field(
        default="expand",
        description="A span edge inside a word: expand (grow to whole words, warn), contract (shrink to the "
        "words wholly inside, warn) or strict (error).")
    overlapping: Literal["error", "longest", "first"] = Field(
        default="error",
        description="Overlapping or nested spans: error, or keep the longest / the first (by start).")
    label_map: str | dict[str, str] | None = Field(
        default=None,
        description="Rename or merge labels (spans and tags): 'Modifier=Disease,SpecificDisease=Disease' or a "
        "YAML/JSON file of old: new.")
    # tokclf: sentence records for span documents (tokclf/text/sentences.py; docs/benchmarks.md NCBI section)
    span_records: Literal["sentence", "document"] = Field(
        default="sentence",
        description="Span exports: train on one record per sentence (rule-based split, never inside an entity; "
        "offsets stay those of the document) or one per document; predict on span inputs follows the model's choice.")
    # tokclf: document context (FLERT; issue 13 item 4; tokclf/text/context.py, docs/accuracy.md)
    document_context: int = Field(
        default=0, ge=0,
        description="Subword pieces of the neighbouring sentences of the same document added on each side of "
        "a sentence as extra model input (labels -100 there: only the sentence is trained on and scored); "
        "0 = off. Documents: CoNLL -DOCSTART- / CoNLL-U newdoc, document_column, the text span exports are "
        "cut from. Recorded with the model, so evaluate/predict/serve use it.")
    document_column: str | None = Field(
        default=None,
        description="Tabular data (CSV, JSON, JSONL, Parquet, HF datasets): rows with the same value in this "
        "column form one document, its sentences in row order (for document_context).")
    validation_split_ratio: float | None = Field(
        default=None, gt=0, lt=1,
        description="Carve this share of train into a validation split when the data has none (seeded).",
    )

    # --- training -------------------------------------------------------------------------------
    lr: float = Field(default=5e-5, gt=0)
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_seq_length: int = Field(default=DEFAULT_MAX_SEQ_LENGTH, ge=8)
    # tokclf: 0, not the spec's 0.1 (issue 13, docs/accuracy.md): warmup spends 10% of a short run's
    # steps below full lr; without it 4 corpora scored +0.5 test F1 on average (+2.2 WNUT-16,
    # -0.5 CoNLL-2003).
    warmup_ratio: float = Field(
        default=0.0, ge=0, lt=1,
        description="Share of the optimizer steps over which the learning rate rises linearly from 0 "
        "(the AutoTrain spec's default is 0.1; tokclf's is 0, measured in docs/accuracy.md).")
    gradient_accumulation: int = Field(default=1, ge=1)
    optimizer: Literal["adamw_torch", "adamw_hf", "sgd", "adafactor"] = "adamw_torch"
    scheduler: Literal["linear", "cosine", "constant", "polynomial"] = "linear"
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, ge=0)
    seed: int = 42

    # tokclf: tokenization additions
    stride: int = Field(default=DEFAULT_STRIDE, ge=0, description="Overlap in subword tokens between windows of long sentences.")
    # tokclf: subword_labels "first" (issue 13): the best of the three on four corpora (docs/accuracy.md).
    subword_labels: Literal["auto", "all", "first"] = Field(
        default="first",
        description="'first' (default): label the first subword of each word (-100 on the rest), as "
        "transformers' run_ner.py does; 'all': every subword gets its word's tag (B-X continuation pieces "
        "get I-X); 'auto': 'first' when more than 17% of the training words split into several pieces, "
        "else 'all' (tokclf/text/alignment.py). Evaluation reads each word's first subword either way.",
    )

    # tokclf: decoding (issue 13; tokclf/inference/decoding.py). Recorded in training_params.json,
    # so predict/serve/evaluate/ONNX of the model folder decode the same way.
    decoding: Literal["viterbi", "argmax"] = Field(
        default="viterbi",
        description="How word labels are chosen from the model's probabilities, in evaluation and prediction: "
        "'viterbi': the most probable sequence the tagging scheme (IOB2, IOBES, BILOU) allows, so no I-X "
        "after O (POS-style labels: same as argmax); 'argmax': each word's most probable label.",
    )

    # tokclf: batch order (issue 13): a switch so the accuracy bench can hold tokclf's batch order
    # and per-token loss against the stock Trainer's on each dataset (docs/accuracy.md).
    batch_order: Literal["length_grouped", "random"] = Field(
        default="length_grouped",
        description="'length_grouped': sentences of similar length batched together, batches shuffled "
        "(tokclf/training/sampling.py: less padding, faster steps); 'random': the stock Trainer's random "
        "batches (more padding, slower steps).",
    )
    # tokclf: how strongly batches are grouped by length (issue 13): the trade between padding
    # (speed) and the variety of sentences within a batch (accuracy in short runs).
    length_grouping: int = Field(
        default=4, ge=1, le=1000,
        description="With batch_order=length_grouped: the shuffled data is cut into groups of this many "
        "batches, each group sorted by length and cut into batches. 1 = random batches; larger = less "
        "padding but batches of ever more similar sentences (transformers' group_by_length uses 50, which "
        "cost up to 8 test F1 points in short runs; 4 keeps most of the padding saving: docs/accuracy.md).",
    )
    # tokclf: loss weighting (issue 13), separate from the batch order so each can be measured alone.
    loss_weighting: Literal["token", "batch"] = Field(
        default="token",
        description="'token': the loss summed over labelled tokens and divided by the epoch's mean labelled "
        "tokens per optimizer step, so every token weighs the same whatever its batch; 'batch': the stock "
        "Trainer's mean over each batch's labelled tokens (a token in a batch of short sentences weighs more).",
    )

    # --- performance -----------------------------------------------------------------------------
    mixed_precision: Literal["fp16", "bf16"] | None = None
    auto_find_batch_size: bool = False
    fast_dropout: bool = Field(
        default=True,
        description="On CPU, draw dropout masks from a vectorised counter hash instead of torch's "
        "sequential generator (~10% faster steps, same dropout rate; tokclf/training/fast_dropout.py).",
    )
    lazy_embedding_updates: bool = Field(
        default=True,
        description="On CPU with AdamW, update only the word-embedding rows of each batch (sparse "
        "gradient, LazyAdam semantics; tokclf/sparse_embeddings.py) instead of all 30k+ rows every "
        "step: 1.14-1.17x faster steps, same CoNLL-2003 test F1. false = dense AdamW on every row.",
    )
    freeze_word_embeddings: bool = Field(
        default=False,
        description="Keep the input word-embedding matrix fixed (position embeddings, LayerNorm and "
        "all layers still train): ~1.14x faster CPU steps, since the vocabulary-sized gradient and "
        "its optimizer update are skipped. Measure F1 on your data before relying on it.",
    )
    logging_steps: int = Field(default=-1, description="-1 = auto (about 5 logs per epoch).")
    eval_strategy: Literal["no", "steps", "epoch"] = "epoch"
    eval_steps: int | None = Field(default=None, ge=1, description="With eval_strategy=steps; default logging_steps.")

    # --- early stopping ---------------------------------------------------------------------------
    early_stopping_patience: int = Field(default=5, ge=0)
    early_stopping_threshold: float = Field(default=0.01, ge=0)

    # --- hub ---------------------------------------------------------------------------------------
    push_to_hub: bool = False
    username: str | None = None
    token: SecretStr | None = Field(default=None, repr=False)
    save_total_limit: int = Field(default=1, ge=1)
    # tokclf: publishing additions (see docs/publishing.md)
    hub_private: bool = Field(default=True, description="Create the Hub repo as private (ignored when it already exists).")
    publish_tolerance: float = Field(
        default=0.0, ge=0, le=1,
        description="Quality gate: publish when the new validation F1 >= the published model's F1 minus this "
        "(F1 on the 0-1 scale of metrics.json: 0.01 = one F1 point).",
    )
    force_publish: bool = Field(default=False, description="Publish even when the quality gate would skip.")

    # --- logging -----------------------------------------------------------------------------------
    log: Literal["none", "tensorboard", "wandb", "mlflow"] = "none"

    # tokclf: resuming interrupted runs (tokclf/training/checkpoints.py, docs/reliability.md)
    resume: str = Field(
        default="auto",
        description="'auto': a rerun with the same project_name continues from the newest complete "
        "checkpoint of the interrupted run; 'never': start fresh (the old checkpoints are removed); "
        "or the path of a checkpoint folder to continue from.",
    )
    checkpoint_minutes: float = Field(
        default=10.0, gt=0,
        description="Besides each epoch end, write a resumable checkpoint at least this often "
        "(minutes of training; MiniLM: 0.1% of training time at the default, under 1% on a loaded "
        "machine, bench/checkpoint_cost.py; a SIGKILL or crash loses at most this much training).",
    )

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _none_string(cls, v: Any) -> Any:
        # YAML and CLI users write "none"/"no"; the spec's None means full precision.
        if isinstance(v, str) and v.strip().lower() in {"none", "no", "null", "fp32", ""}:
            return None
        return v

    @field_validator("data_path")
    @classmethod
    def _data_paths(cls, v: Any) -> Any:
        # One source given as a list (a repeated flag used once) is the plain string.
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list: give at least one data source")
            return v[0] if len(v) == 1 else v
        return v

    @field_validator("label_names", mode="before")
    @classmethod
    def _split_label_names(cls, v: Any) -> Any:
        if isinstance(v, str) and "," in v:
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("logging_steps")
    @classmethod
    def _logging_steps(cls, v: int) -> int:
        if v == -1 or v >= 1:
            return v
        raise ValueError("must be -1 (auto) or a positive number of steps")

    @model_validator(mode="after")
    def _combinations(self) -> TokenClassificationParams:
        if self.valid_split is not None and self.valid_split == self.train_split:
            raise ValueError(f"valid_split and train_split are both {self.train_split!r}; use two different splits")
        if self.valid_split is not None and self.validation_split_ratio is not None:
            raise ValueError("valid_split and validation_split_ratio both set: use an existing split or carve one, not both")
        if self.stride * 2 >= self.max_seq_length - 2:
            raise ValueError(
                f"stride={self.stride} must be less than half of max_seq_length={self.max_seq_length} (minus special tokens)"
            )
        explicit = self.model_fields_set
        if self.eval_strategy == "no" and "early_stopping_patience" in explicit and self.early_stopping_patience > 0:
            raise ValueError(
                "early_stopping_patience needs evaluation, but eval_strategy='no': "
                "set eval_strategy to 'epoch' or 'steps', or early_stopping_patience=0"
            )
        if self.push_to_hub and not self.username:
            raise ValueError("push_to_hub=True needs username (the Hub user or organisation to push to)")
        if self.push_to_hub:
            problem = hub_repo_id_problem(self.username or "", Path(self.project_name).expanduser().name)
            if problem:
                raise ValueError(problem)
        return self

    # --- helpers -------------------------------------------------------------------------------------
    def validation_split(self) -> str | None:
        """Name of the validation split: `valid_split`, or the split that `validation_split_ratio`
        carves from train (CARVED_VALIDATION_SPLIT), or None."""
        if self.valid_split is not None:
            return self.valid_split
        return CARVED_VALIDATION_SPLIT if self.validation_split_ratio is not None else None

    def split_roles(self, available: Iterable[str]) -> tuple[str, str | None, str | None]:
        """(train, validation, test) split names, validation and test None when `available` (the
        data's splits) lacks them."""
        present = set(available)
        valid = self.validation_split()
        test = self.test_split
        return self.train_split, valid if valid in present else None, test if test in present else None

    def public_dict(self) -> dict[str, Any]:
        """Parameters safe to write (training_params.json, cards, logs): the token is dropped."""
        return self.model_dump(mode="json", exclude=set(SECRET_KEYS))

    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None


# Hub repo names: letters, digits, "-", "_", "."; no "--" or ".."; not starting or ending with "-" or ".";
# at most 96 characters (huggingface_hub's validate_repo_id plus the Hub's own rule on length).
_HUB_NAME = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?$")


def hub_repo_id_problem(namespace: str, name: str) -> str | None:
    """Why `namespace/name` cannot be a Hub repo id (None when it can)."""
    if not _HUB_NAME.match(namespace or ""):
        return (f"username {namespace!r} is not a valid Hub user or organisation name "
                "(letters, digits, '-', '_', '.'; no '--' or '..'; not starting or ending with '-' or '.')")
    if not _HUB_NAME.match(name or ""):
        return (f"the Hub repo name is the last part of project_name, {name!r}, which is not a valid repo name "
                "(letters, digits, '-', '_', '.', at most 96 characters; no '--' or '..'; not starting or ending "
                "with '-' or '.'): choose another project_name")
    return None


def params_from_mapping(data: dict[str, Any], *, source: str = "parameters") -> TokenClassificationParams:
    """Build params, turning pydantic's errors into one message that names each bad key."""
    try:
        return TokenClassificationParams(**data)
    except ValidationError as exc:
        raise ParamsError(_describe(exc), where=source, fix=_FIX, code="E0007") from None


_FIX = "see `tokclf train --help` or the Parameters section of the README for names and allowed values."


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(parameters)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown parameter"
        elif err["type"] == "missing":
            msg = "required parameter is missing"
        lines.append(f"{key}: {msg}" if err["loc"] else msg)
    return "invalid parameters:\n" + "\n".join(f"  - {line}" for line in lines)


# Top-level sections a shared params.yaml may group keys under (DVC stages read the same file).
# Keys inside them are flattened; a key present in two sections is an error.
def flatten_config(raw: dict[str, Any], *, source: str) -> dict[str, Any]:
    fields = TokenClassificationParams.model_fields
    flat: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in raw.items():
        if key not in fields and isinstance(value, dict):
            for sub, sub_value in value.items():
                if sub in flat:
                    raise ParamsError(
                        f"parameter {sub!r} is set twice ({origin[sub]} and {key}.{sub})",
                        where=source, fix="keep one of them.", code="E0008",
                    )
                flat[sub] = sub_value
                origin[sub] = f"{key}.{sub}"
        else:
            if key in flat:
                raise ParamsError(f"parameter {key!r} is set twice ({origin[key]} and {key})", where=source, fix="keep one of them.", code="E0009")
            flat[key] = value
            origin[key] = key
    return flat


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config into a flat key -> value mapping (not yet validated)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"config file not found: {p}", fix="pass the path of a YAML file with parameters.", code="E0010")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}, line {mark.line + 1}" if mark is not None else str(p)
        raise ParamsError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where, fix="fix the YAML syntax.", code="E0011") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"not UTF-8 text (byte {exc.start})", where=str(p), fix="save the file as UTF-8.", code="E0012") from None
    if not isinstance(raw, dict):
        raise ParamsError("expected a mapping of parameter names to values", where=str(p), fix="write `key: value` lines.", code="E0013")
    return flatten_config(raw, source=str(p))
