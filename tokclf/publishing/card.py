"""The model card: README.md in every model folder, written on every run (pushed or not).

YAML front matter in the form the Hugging Face Hub reads (built with huggingface_hub's
`ModelCardData`, so the keys and the model-index layout are the Hub's own): library_name,
pipeline_tag, base_model, datasets (Hub data only), tags, a widget example taken from the user's
own validation data, and a model-index whose values are exactly those of metrics.json.

The body says what the model tags, how it was scored (word level, entity level with seqeval, or
per tag), the scores per split and per type, the training parameters (never the token), data
fingerprints, the validation report's summary, how to use the model and its limitations.

Nothing here reaches the network; huggingface_hub is imported only to lay out the YAML.
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
    digest = hashlib.sha256()
    sentences = words = 0
    for tokens, tags in zip(dataset[TOKENS], dataset[TAGS], strict=True):
        line = json.dumps({"tokens": list(tokens), "tags": _tag_names(tags, label_names)},
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
    import yaml

    return yaml.safe_load(_front_matter_yaml(params, data, metrics, widget=widget))


def _front_matter_yaml(
    params: TokenClassificationParams, data: LabelledData, metrics: dict[str, Any], *, widget: str | None
) -> str:
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
    card = ModelCardData(
        model_name=name if results else None,
        base_model=params.model if is_hub_id(params.model) else None,
        datasets=[params.data_path] if hub_data else None,
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=tags,
        eval_results=results or None,
        **extra,
    )
    return card.to_yaml()


def card_metadata(readme_text: str) -> dict[str, Any]:
    """The YAML front matter of a README as a dict ({} when there is none)."""
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme_text, flags=re.S)
    if not match:
        return {}
    loaded = yaml.safe_load(match.group(1))
    return loaded if isinstance(loaded, dict) else {}


# --- body --------------------------------------------------------------------------------------------
def _protocol(metrics: dict[str, Any], params: TokenClassificationParams) -> str:
    scheme = (metrics.get("validation") or metrics.get("test") or {}).get("scheme")
    common = (
        "Scores are computed on **words**, never on subword pieces: each word takes the label predicted "
        "for its first subword. Sentences longer than "
        f"`max_seq_length={params.max_seq_length}` subword tokens are scored in overlapping windows "
        f"(`stride={params.stride}`), each word taken from the window where it sits farthest from an edge, "
        "so nothing is truncated. Accuracy is the share of words whose label is right."
    )
    if scheme == "entity":
        return common + (
            "\n\nPrecision, recall and F1 are **entity level**, computed with "
            "[seqeval](https://github.com/chakki-works/seqeval) in its default mode (the conlleval rules): "
            "an entity counts only when its type and both boundaries match, and an `I-X` that does not "
            "continue an `X` entity starts a new one. Overall values are micro averages over entities; "
            "`support` is the number of gold entities of the type."
        )
    return common + (
        "\n\nThe labels are not BIO spans, so precision, recall and F1 are **per tag** (token level): every "
        "word is one decision, the overall values are micro averages over words (equal to accuracy) and "
        "`support` is the number of gold words with the tag."
    )


def _scores_table(m: dict[str, Any]) -> str:
    rows = ["| type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in sorted((m.get("per_type") or {}).items()):
        rows.append(f"| {_md(name)} | {_f(row['precision'])} | {_f(row['recall'])} | {_f(row['f1'])} | {row.get('support', '')} |")
    rows.append(f"| **overall** | **{_f(m['precision'])}** | **{_f(m['recall'])}** | **{_f(m['f1'])}** | |")
    return "\n".join(rows)


def _labels_section(data: LabelledData, metrics: dict[str, Any]) -> str:
    names = data.label_names
    scheme = (metrics.get("validation") or metrics.get("test") or {}).get("scheme")
    if not names:
        return (f"The data has {data.num_labels} integer tags without names; the model predicts "
                "`LABEL_0` ... and scores are per tag. Pass `label_names` to get entity-level scores.")
    if scheme == "entity":
        types = sorted({n.split("-", 1)[1] for n in names if n != "O" and "-" in n})
        head = f"It tags **entity spans** of {len(types)} type(s): " + ", ".join(f"`{t}`" for t in types) + "."
    else:
        head = f"It assigns one of {len(names)} **tags** to every word (e.g. part of speech)."
    return head + "\n\nLabel set (id: label): " + ", ".join(f"{i}: `{n}`" for i, n in enumerate(names)) + "."


def _params_table(params: TokenClassificationParams) -> str:
    rows = ["| parameter | value |", "|---|---|"]
    for key, value in params.public_dict().items():
        if key == "data_path" and not str(value).startswith(("package://",)) and not is_hub_id(str(value)):
            value = Path(str(value)).expanduser().name
        if key == "project_name":
            value = Path(str(value)).expanduser().name
        if key == "model" and not is_hub_id(str(value)):
            value = Path(str(value)).expanduser().name
        rows.append(f"| `{key}` | {_md(json.dumps(value, ensure_ascii=False))} |")
    return "\n".join(rows)


def _data_section(data: LabelledData, roles: dict[str, str | None], fingerprints: dict[str, dict[str, Any]]) -> str:
    role_of = {v: k for k, v in roles.items() if v}
    rows = ["| split | role | source | sentences | words | sha256 |", "|---|---|---|---|---|---|"]
    for name in data.splits:
        fp = fingerprints.get(name, {})
        rows.append(
            f"| {_md(name)} | {role_of.get(name, '')} | {_md(_source_name(str(data.sources.get(name, name))))} | "
            f"{fp.get('sentences', '')} | {fp.get('tokens', '')} | `{fp.get('sha256', '')}` |"
        )
    return "\n".join(rows) + (
        "\n\nsha256: hash of the split as tokclf read it (after validation and any BIO repair): one line per "
        "sentence, `{\"tokens\": [...], \"tags\": [...]}` as compact UTF-8 JSON with tag names, in order "
        "(`tokclf.publishing.card.fingerprint_split`). Equal hashes mean the same sentences and tags, whatever the file format."
    )


def _validation_section(report: dict[str, Any]) -> str:
    if not report:
        return "No validation report was recorded."
    warnings = report.get("warnings") or []
    by_code: dict[str, int] = {}
    for w in warnings:
        by_code[w.get("code", "?")] = by_code.get(w.get("code", "?"), 0) + 1
    lines = [
        f"Data validation before training: {report.get('num_errors', 0)} error(s), "
        f"{report.get('num_warnings', len(warnings))} warning(s), {report.get('repaired', 0)} tag(s) repaired "
        "(full report: `validation_report.json`)."
    ]
    if by_code:
        lines.append("")
        lines.append("Warnings by kind: " + ", ".join(f"`{c}` {n}" for c, n in sorted(by_code.items())) + ".")
        lines.append("")
        for w in warnings[:MAX_WARNINGS_SHOWN]:
            lines.append(f"- {_md(w.get('split', ''))}: {_md(w.get('message', ''))}")
        if len(warnings) > MAX_WARNINGS_SHOWN:
            lines.append(f"- ... and {len(warnings) - MAX_WARNINGS_SHOWN} more")
    return "\n".join(lines)


def _model_max_length(model_dir: Path | None) -> int | None:
    if model_dir is None:
        return None
    try:
        value = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, (int, float)) and 0 < value < 1_000_000 else None


def _limitations(params: TokenClassificationParams, data: LabelledData, model_dir: Path | None, dataset: str) -> str:
    mml = _model_max_length(model_dir)
    window = (
        f"- **Long inputs.** tokclf trained and scored in windows of `max_seq_length={params.max_seq_length}` "
        f"subword tokens with `stride={params.stride}` of overlap, so long sentences were never truncated. The "
        "`transformers` pipeline, however, truncates its input at the tokenizer's `model_max_length`"
        + (f" ({mml} tokens)" if mml else "")
        + " unless you pass `stride=`, e.g. `pipeline(..., aggregation_strategy=\"simple\", stride=32)`, which "
        "covers the whole text in overlapping windows."
    )
    lines = [
        window,
        f"- **Language and domain.** The model saw only `{dataset}`: its language(s), domain, spelling and "
        "tokenisation conventions. It has not been evaluated on anything else; expect lower scores on other "
        "languages, text types or annotation guidelines. The scores above come from held-out splits of the same data.",
        "- **Words.** Training data came split into words; the pipeline splits raw text with the tokenizer's "
        "pre-tokenizer, which may cut words (e.g. punctuation, hyphens, contractions) differently.",
    ]
    if not data.label_names:
        lines.append("- **No label names.** Tags were integers without names, so predictions are `LABEL_i` and "
                     "no entity-level scores exist.")
    return "\n".join(lines)


def _training_summary(metrics: dict[str, Any]) -> str:
    t = metrics.get("train") or {}
    if not t:
        return ""
    parts = []
    for key, label in (("epochs", "epochs run"), ("steps", "optimizer steps"), ("loss", "final training loss"),
                       ("runtime_s", "training time (s)"), ("sentences", "training sentences"),
                       ("features", "training windows")):
        if key in t:
            parts.append(f"{label}: {t[key]:.4f}" if isinstance(t[key], float) and key == "loss" else f"{label}: {t[key]}")
    best = metrics.get("best_checkpoint")
    if best:
        parts.append(f"best checkpoint (validation F1): {best}")
    return "; ".join(parts) + "."


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
    """The full README.md text: YAML front matter, then the card body.

    `report` is a ValidationReport (or its `to_dict()`); `model_dir` (optional) is the folder the
    model and tokenizer were saved to, read for the tokenizer's model_max_length.
    """
    from tokclf import __version__

    report_dict = report.to_dict() if hasattr(report, "to_dict") else (report or {})
    fingerprints = fingerprints if fingerprints is not None else data_fingerprints(data)
    model_dir = Path(model_dir) if model_dir is not None else None
    roles = split_roles(metrics, params, data)
    widget = widget_text(data, roles["validation"] or roles["test"] or roles["train"], data.label_names)
    name = repo_name(params)
    hub_id = hub_model_id(params)
    dataset = data_display_name(params, data)
    base = params.model if is_hub_id(params.model) else f"a local checkpoint ({Path(params.model).name})"
    base_link = f"[`{params.model}`](https://huggingface.co/{params.model})" if is_hub_id(params.model) else base

    parts = ["---", _front_matter_yaml(params, data, metrics, widget=widget).rstrip("\n"), "---", ""]
    parts.append(f"# {name}\n")
    parts.append(
        f"A token-classification model: {base_link} fine-tuned with tokclf {__version__} on `{dataset}`. "
        + _labels_section(data, metrics) + "\n"
    )

    parts.append("## Evaluation\n")
    parts.append(_protocol(metrics, params) + "\n")
    any_scores = False
    for role in ("validation", "test"):
        m = metrics.get(role)
        if not m:
            continue
        any_scores = True
        split = m.get("split", role)
        parts.append(
            f"### {role.capitalize()} (split `{split}`: {m.get('num_sentences', '?')} sentences, "
            f"{m.get('num_words', '?')} words)\n"
        )
        parts.append(_scores_table(m) + "\n")
        parts.append(f"Word accuracy: {_f(m['accuracy'])}\n")
    if not any_scores:
        parts.append("No validation or test split was available: this model has **no reported scores**.\n")

    parts.append("## How to use\n")
    model_ref = hub_id or name
    example = widget or "Your text here"
    parts.append(
        "```python\nfrom transformers import pipeline\n\n"
        f'ner = pipeline("token-classification", model={json.dumps(model_ref)}, aggregation_strategy="simple")\n'
        f"print(ner({json.dumps(example, ensure_ascii=False)}))\n```\n"
    )
    parts.append(
        "`aggregation_strategy=\"simple\"` merges subword pieces into whole words and entity spans. "
        + ("The example sentence comes from the validation data.\n" if widget else "\n")
    )

    parts.append("## Training\n")
    summary = _training_summary(metrics)
    if summary:
        parts.append(summary + "\n")
    parts.append("Parameters (the Hub token is never recorded):\n")
    parts.append(_params_table(params) + "\n")
    if versions:
        parts.append("Software: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".\n")

    parts.append("## Data\n")
    parts.append(_data_section(data, roles, fingerprints) + "\n")
    parts.append(_validation_section(report_dict) + "\n")

    parts.append("## Limitations\n")
    parts.append(_limitations(params, data, model_dir, dataset) + "\n")
    return "\n".join(parts)
