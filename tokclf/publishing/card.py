"""The model card: README.md in every model folder, written on every run (pushed or not).

Rendered by huggingface_hub's `ModelCard.from_template` over `templates/model_card.md` (package
data): the YAML front matter is huggingface_hub's `ModelCardData` (library_name, pipeline_tag,
base_model, datasets (Hub data only), tags, a widget example taken from the user's own validation
data) with a model-index of `EvalResult`s whose values are exactly those of metrics.json; the body
is the template's layout and prose over `card_context` (plain values, formatted and escaped here).

The body says what the model tags, how it was scored (word level, entity level with seqeval, or
per tag), the scores per split and per type, the training parameters (never the token), data
fingerprints, the validation report's summary, how to use the model and its limitations.

Nothing here reaches the network; huggingface_hub lays out the metadata and parses the card back.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tokclf.core.columns import TAGS, TOKENS
from tokclf.core.params import TokenClassificationParams
from tokclf.data.types import LabelledData

MAX_WARNINGS_SHOWN = 10
WIDGET_MAX_WORDS = 40


# --- data fingerprints ------------------------------------------------------------------------------
def _tag_names(tags: list[int], label_names: list[str] | None) -> list[Any]:
    if label_names is None:
        return [int(t) for t in tags]
    return [label_names[int(t)] if 0 <= int(t) < len(label_names) else int(t) for t in tags]


def fingerprint_split(dataset: Any, label_names: list[str] | None) -> dict[str, Any]:
    """sha256 of a split's normalised content, plus its sentence and word counts.

    Normalised content: one line per sentence, in order, `{"tokens": [...], "tags": [...]}` as
    compact JSON (UTF-8, no ASCII escaping), tags as label names when the data has names (ids
    otherwise). The same sentences read from CSV, JSONL, CoNLL or a Hub dataset therefore give the
    same hash; a changed word, tag or sentence order gives another.
    """
    from tokclf.core.arrowio import dataset_tables

    digest = hashlib.sha256()
    sentences = words = 0
    # Batch by batch out of Arrow: one conversion per batch (not one per row), bounded memory.
    for table in dataset_tables(dataset.select_columns([TOKENS, TAGS])):
        for tokens, tags in zip(table.column(TOKENS).to_pylist(), table.column(TAGS).to_pylist(), strict=True):
            line = json.dumps({"tokens": tokens, "tags": _tag_names(tags, label_names)},
                              ensure_ascii=False, separators=(",", ":"))
            digest.update(line.encode("utf-8") + b"\n")
            sentences += 1
            words += len(tokens)
    return {"sha256": digest.hexdigest(), "sentences": sentences, "tokens": words}


def data_fingerprints(data: LabelledData) -> dict[str, dict[str, Any]]:
    """split name -> {sha256, sentences, tokens} for every split of the (validated) data."""
    return {name: fingerprint_split(ds, data.label_names) for name, ds in data.splits.items()}


# --- small helpers -----------------------------------------------------------------------------------
def is_hub_id(name: str) -> bool:
    """A Hub repo id (`org/name` or a canonical `name`) rather than a local path or package URI."""
    from tokclf.core.resources import is_hub_id as looks_like_hub_id
    from tokclf.data.ingest import SUPPORTED

    return looks_like_hub_id(name, file_suffixes=frozenset(SUPPORTED))


def data_is_hub(params: TokenClassificationParams, data: LabelledData) -> bool:
    return any(str(s).startswith("hub:") for s in data.sources.values())


def data_display_name(params: TokenClassificationParams, data: LabelledData) -> str:
    """A short name for the data: the Hub id, the package path, or the file/folder name (never a full
    local path, which would publish the trainer's directory layout)."""
    if not isinstance(params.data_path, str):  # several sources
        return " + ".join(Path(p).expanduser().name or p for p in params.data_path)
    if data_is_hub(params, data):
        return params.data_path
    if params.data_path.startswith("package://"):
        return params.data_path.removeprefix("package://")
    return Path(params.data_path).expanduser().name or params.data_path


def _source_name(source: str) -> str:
    if source.startswith("hub:"):
        return source
    return Path(source.split(",")[0]).name or source


def split_roles(metrics: dict[str, Any], params: TokenClassificationParams, data: LabelledData) -> dict[str, str | None]:
    """role -> split name in `data` (train / validation / test)."""
    def present(name: str | None) -> str | None:
        return name if name is not None and name in data.splits else None

    valid = (metrics.get("validation") or {}).get("split") or params.validation_split()
    test = (metrics.get("test") or {}).get("split") or params.test_split
    return {"train": present(params.train_split), "validation": present(valid), "test": present(test)}


def widget_text(data: LabelledData, split: str | None, label_names: list[str] | None) -> str | None:
    """One sentence of the user's own data, words joined with spaces: the first one of the split that
    has an entity (any non-"O" tag) and at most WIDGET_MAX_WORDS words, else the first non-empty one."""
    if split is None or split not in data.splits:
        return None
    ds = data.splits[split]
    fallback = None
    for tokens, tags in zip(ds[TOKENS], ds[TAGS], strict=True):
        if not tokens:
            continue
        text = " ".join(str(t) for t in tokens)
        if fallback is None:
            fallback = " ".join(str(t) for t in tokens[:WIDGET_MAX_WORDS])
        names = _tag_names(tags, label_names)
        if len(tokens) <= WIDGET_MAX_WORDS and any(n not in ("O", 0) for n in names):
            return text
    return fallback


def repo_name(params: TokenClassificationParams) -> str:
    return Path(params.project_name).expanduser().name


def hub_model_id(params: TokenClassificationParams) -> str | None:
    """`username/project_name` when a Hub namespace is configured."""
    return f"{params.username}/{repo_name(params)}" if params.username else None


def _f(x: Any) -> str:
    return f"{float(x):.4f}" if isinstance(x, (int, float)) else str(x)


def _md(text: Any) -> str:
    """Escape what would break a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- front matter ------------------------------------------------------------------------------------
METRIC_KEYS = (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"), ("accuracy", "Accuracy"))


def front_matter(
    params: TokenClassificationParams, data: LabelledData, metrics: dict[str, Any], *, widget: str | None
) -> dict[str, Any]:
    """The card's metadata as a dict (what `card_metadata(README)` reads back)."""
    return card_data(params, data, metrics, widget=widget).to_dict()


def card_data(
    params: TokenClassificationParams, data: LabelledData, metrics: dict[str, Any], *, widget: str | None
) -> Any:
    """The Hub metadata as huggingface_hub's `ModelCardData`: the model-index holds one `EvalResult`
    per scored split and metric, with exactly the values of metrics.json."""
    from huggingface_hub import EvalResult, ModelCardData

    name = repo_name(params)
    dataset_name = data_display_name(params, data)
    hub_data = data_is_hub(params, data)
    results = []
    for role in ("validation", "test"):
        m = metrics.get(role)
        if not m:
            continue
        for key, pretty in METRIC_KEYS:
            if key not in m:
                continue
            results.append(EvalResult(
                task_type="token-classification", task_name="Token Classification",
                dataset_type=params.data_path if hub_data else dataset_name, dataset_name=dataset_name,
                dataset_split=m.get("split", role), metric_type=key, metric_value=float(m[key]),
                metric_name=pretty,
            ))
    scheme = (metrics.get("validation") or metrics.get("test") or {}).get("scheme")
    tags = ["token-classification", "tokclf", "generated_from_trainer"]
    if scheme == "entity":
        tags.append("ner")
    extra: dict[str, Any] = {}
    if widget:
        extra["widget"] = [{"text": widget}]
    return ModelCardData(
        model_name=name if results else None,
        base_model=params.model if is_hub_id(params.model) else None,
        datasets=[params.data_path] if hub_data else None,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=tags,
        eval_results=results or None,
        **extra,
    )


def card_metadata(readme_text: str) -> dict[str, Any]:
    """The YAML front matter of a README as a dict ({} when there is none)."""
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme_text, flags=re.S)
    if not match:
        return {}
    loaded = yaml.safe_load(match.group(1))
    return loaded if isinstance(loaded, dict) else {}


# --- body --------------------------------------------------------------------------------------------
TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"


def _scheme(metrics: dict[str, Any]) -> str | None:
    return (metrics.get("validation") or metrics.get("test") or {}).get("scheme")


def _score_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per scored role (validation, test): its split, sizes, per-type rows and overall."""
    out = []
    for role in ("validation", "test"):
        m = metrics.get(role)
        if not m:
            continue
        out.append({
            "role": role, "split": m.get("split", role),
            "num_sentences": m.get("num_sentences", "?"), "num_words": m.get("num_words", "?"),
            "per_type": [{"name": _md(name), "precision": _f(row["precision"]), "recall": _f(row["recall"]),
                          "f1": _f(row["f1"]), "support": row.get("support", "")}
                         for name, row in sorted((m.get("per_type") or {}).items())],
            "precision": _f(m["precision"]), "recall": _f(m["recall"]), "f1": _f(m["f1"]),
            "accuracy": _f(m["accuracy"]),
        })
    return out


def _labels(data: LabelledData, metrics: dict[str, Any]) -> dict[str, Any]:
    names = data.label_names
    entity = _scheme(metrics) == "entity"
    types = sorted({n.split("-", 1)[1] for n in names if n != "O" and "-" in n}) if names and entity else []
    return {"names": names, "count": data.num_labels, "entity": entity, "types": types}


def _parameter_rows(params: TokenClassificationParams) -> list[tuple[str, str]]:
    """(key, JSON value) of every public parameter; paths shortened to their last part (a card must
    not publish the trainer's directory layout)."""
    rows = []
    for key, value in params.public_dict().items():
        if key == "data_path" and isinstance(value, list):
            value = [Path(v).expanduser().name if not is_hub_id(v) else v for v in value]
        elif key == "data_path" and not str(value).startswith(("package://",)) and not is_hub_id(str(value)):
            value = Path(str(value)).expanduser().name
        if key == "project_name":
            value = Path(str(value)).expanduser().name
        if key == "model" and not is_hub_id(str(value)):
            value = Path(str(value)).expanduser().name
        rows.append((key, _md(json.dumps(value, ensure_ascii=False))))
    return rows


def _data_rows(data: LabelledData, roles: dict[str, str | None],
               fingerprints: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    role_of = {v: k for k, v in roles.items() if v}
    rows = []
    for name in data.splits:
        fp = fingerprints.get(name, {})
        rows.append({"name": _md(name), "role": role_of.get(name, ""),
                     "source": _md(_source_name(str(data.sources.get(name, name)))),
                     "sentences": fp.get("sentences", ""), "words": fp.get("tokens", ""), "sha256": fp.get("sha256", "")})
    return rows


def _validation_summary(report: dict[str, Any]) -> dict[str, Any] | None:
    if not report:
        return None
    warnings = report.get("warnings") or []
    by_code: dict[str, int] = {}
    for w in warnings:
        by_code[w.get("code", "?")] = by_code.get(w.get("code", "?"), 0) + 1
    return {
        "errors": report.get("num_errors", 0), "warnings": report.get("num_warnings", len(warnings)),
        "repaired": report.get("repaired", 0), "by_code": sorted(by_code.items()),
        "shown": [{"split": _md(w.get("split", "")), "message": _md(w.get("message", ""))}
                  for w in warnings[:MAX_WARNINGS_SHOWN]],
        "more": max(0, len(warnings) - MAX_WARNINGS_SHOWN),
    }


def _model_max_length(model_dir: Path | None) -> int | None:
    if model_dir is None:
        return None
    try:
        value = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, (int, float)) and 0 < value < 1_000_000 else None


def _training_summary(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) pairs of the training run: epochs, steps, loss, time, sizes, best checkpoint."""
    t = metrics.get("train") or {}
    if not t:
        return []
    parts: list[tuple[str, Any]] = []
    for key, label in (("epochs", "epochs run"), ("steps", "optimizer steps"), ("loss", "final training loss"),
                       ("runtime_s", "training time (s)"), ("sentences", "training sentences"),
                       ("features", "training windows")):
        if key in t:
            parts.append((label, f"{t[key]:.4f}" if isinstance(t[key], float) and key == "loss" else t[key]))
    best = metrics.get("best_checkpoint")
    if best:
        parts.append(("best checkpoint (validation F1)", best))
    return parts


def pipeline_aggregation(params: TokenClassificationParams, model_dir: Path | None) -> str:
    """The `aggregation_strategy` the card's example uses: "first" (each word's label from its first
    piece, as tokclf trained and scored it) for a model whose continuation pieces were not trained
    (subword_labels "first", or "auto" choosing it: training_params.json records the choice), else
    "simple" (every piece carries its word's label, so merging pieces gives whole words)."""
    chosen = params.subword_labels
    if chosen == "auto" and model_dir is not None and (model_dir / "training_params.json").is_file():
        recorded = json.loads((model_dir / "training_params.json").read_text(encoding="utf-8"))
        chosen = (recorded.get("subword_labels_chosen") or {}).get("chosen", chosen)
    return "simple" if chosen == "all" else "first"


def card_context(
    params: TokenClassificationParams,
    data: LabelledData,
    metrics: dict[str, Any],
    report: dict[str, Any],
    *,
    widget: str | None,
    roles: dict[str, str | None],
    model_dir: Path | None,
    fingerprints: dict[str, dict[str, Any]],
    versions: dict[str, str] | None,
) -> dict[str, Any]:
    """What templates/model_card.md shows besides the metadata: plain values, numbers formatted and
    table cells escaped here so the template holds only the layout and the prose."""
    from tokclf import __version__

    base_link = (f"[`{params.model}`](https://huggingface.co/{params.model})" if is_hub_id(params.model)
                 else f"a local checkpoint ({Path(params.model).name})")
    return {
        "name": repo_name(params), "tokclf_version": __version__, "base_link": base_link,
        "dataset": data_display_name(params, data), "labels": _labels(data, metrics),
        "max_seq_length": params.max_seq_length, "stride": params.stride,
        "scores": _score_rows(metrics),
        "model_ref_json": json.dumps(hub_model_id(params) or repo_name(params)),
        "example_json": json.dumps(widget or "Your text here", ensure_ascii=False), "widget": bool(widget),
        "training": _training_summary(metrics), "parameters": _parameter_rows(params), "versions": versions or {},
        "data_splits": _data_rows(data, roles, fingerprints), "validation": _validation_summary(report),
        "model_max_length": _model_max_length(model_dir),
        "aggregation": pipeline_aggregation(params, model_dir),
    }


def render_card(
    params: TokenClassificationParams,
    data: LabelledData,
    metrics: dict[str, Any],
    report: Any = None,
    *,
    model_dir: str | Path | None = None,
    fingerprints: dict[str, dict[str, Any]] | None = None,
    versions: dict[str, str] | None = None,
) -> str:
    """The full README.md text: huggingface_hub's `ModelCard.from_template` over
    templates/model_card.md, with the metadata of `card_data` and the body of `card_context`.

    `report` is a ValidationReport (or its `to_dict()`); `model_dir` (optional) is the folder the
    model and tokenizer were saved to, read for the tokenizer's model_max_length. The text is
    parsed back by ModelCard (a malformed model-index raises here, not on the Hub).
    """
    from huggingface_hub import ModelCard

    report_dict = report.to_dict() if hasattr(report, "to_dict") else (report or {})
    fingerprints = fingerprints if fingerprints is not None else data_fingerprints(data)
    model_dir = Path(model_dir) if model_dir is not None else None
    roles = split_roles(metrics, params, data)
    widget = widget_text(data, roles["validation"] or roles["test"] or roles["train"], data.label_names)
    context = card_context(params, data, metrics, report_dict, widget=widget, roles=roles, model_dir=model_dir,
                           fingerprints=fingerprints, versions=versions)
    card = ModelCard.from_template(card_data(params, data, metrics, widget=widget), template_path=str(TEMPLATE),
                                   **context)
    return str(card)
