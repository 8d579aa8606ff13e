"""Label Studio exports: the JSON export (tasks with `data` and `annotations[]`) and JSON-MIN.

JSON export: a list of tasks `{"id", "data": {"text": ...}, "annotations": [{"result": [...],
"was_cancelled", "updated_at", ...}], "predictions": [...]}`; each result of type "labels" holds
`value: {start, end, text, labels: [type]}`. Results of other types (choices, relations, ...)
are not mentions and are skipped.

Which annotation of a task counts (several annotators): the latest non-cancelled one, by
`updated_at` (then `created_at`, then its position in the list); cancelled ones
(`was_cancelled: true`) are skipped, and a task with no annotation left is not training data
(counted in a note, never guessed from its `predictions`).

JSON-MIN: one flat object per annotation, `{"id", "text", "<from_name>": [{start, end, text,
labels}], "annotator", "updated_at", ...}`; a task annotated by several people appears once per
annotation, so the same rule (the latest per task id) applies.

The text: `data.text` (the `$text` of tokclf's and Label Studio's NER labeling config). Offsets
count UTF-16 code units, as Label Studio's JavaScript front end does; they are converted to Python
string indices (they differ only after characters beyond U+FFFF, such as emoji). tokclf's writer
(`tokclf.inference.annotations`) converts back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokclf.core.errors import DataError
from tokclf.data.formats.jsonrecords import offset, read_records, require_dict
from tokclf.data.spans import Span, SpanDoc, utf16_to_index

_EXAMPLE = '{"id": 1, "data": {"text": "..."}, "annotations": [{"result": [...]}]}'


def min_label_key(rec: dict[str, Any]) -> str | None:
    """The JSON-MIN field holding a task's spans: a list of objects with start/end/labels."""
    for key, value in rec.items():
        if key in ("text", "id") or not isinstance(value, list) or not value:
            continue
        if all(isinstance(v, dict) and "start" in v and "end" in v and "labels" in v for v in value):
            return key
    return None


def _task_text(data: Any, where: str) -> str:
    if not isinstance(data, dict):
        raise DataError("the task has no `data` object", where=where, fix=f"export tasks like {_EXAMPLE}.", code="E2028")
    if isinstance(data.get("text"), str):
        return data["text"]
    fields = ", ".join(data) or "none"
    raise DataError(f"the task has no text: `data.text` is missing (its data fields: {fields})", where=where,
                    fix="put the text the spans point into under data.text (a labeling config with "
                    "<Text name=\"text\" value=\"$text\"/>), or drop tasks that are not text.", code="E2029")


def _latest(annotations: list[tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]] | None:
    """The annotation that counts: latest updated_at, then created_at, then list position."""
    live = [(i, a) for i, a in annotations if not a.get("was_cancelled")]
    if not live:
        return None
    return max(live, key=lambda ia: (str(ia[1].get("updated_at") or ""), str(ia[1].get("created_at") or ""), ia[0]))


def _spans(results: Any, where: str) -> list[Span]:
    if not isinstance(results, list):
        raise DataError(f"`result` must be a list, got {type(results).__name__}", where=where,
                        fix="export the annotations again from Label Studio.", code="E2030")
    spans = []
    for n, res in enumerate(results, 1):
        if not isinstance(res, dict):
            continue
        value = res.get("value")
        kind = res.get("type")
        if kind is not None and kind != "labels":
            continue  # choices, relations, textarea...: not mentions
        if not isinstance(value, dict) or "start" not in value or "end" not in value:
            if kind == "labels":
                raise DataError(f"result {n} of type labels has no value.start/value.end", where=where,
                                fix="export annotations made on text (Labels on a Text tag).", code="E2031")
            continue
        ref = f"result {res.get('id', n)}"
        labels = value.get("labels") or []
        if not isinstance(labels, list):
            labels = [labels]
        label = str(labels[0]) if labels else ""
        spans.append(Span(offset(value["start"], "value.start", f"{where}, {ref}"),
                          offset(value["end"], "value.end", f"{where}, {ref}"),
                          label, value.get("text") if isinstance(value.get("text"), str) else None, ref))
        if len(labels) > 1:
            # One region with two labels is two overlapping mentions: the overlap rule decides.
            for extra in labels[1:]:
                spans.append(Span(spans[-1].start, spans[-1].end, str(extra), spans[-1].recorded, ref))
    return spans


def _min_spans(items: list[Any], where: str) -> list[Span]:
    return _spans([{"type": "labels", "value": v, "id": i} for i, v in enumerate(items, 1)], where)


def _code_points(text: str, spans: list[Span]) -> list[Span]:
    """Label Studio's offsets count UTF-16 units (JavaScript strings): the same as Python indices
    unless the text has characters beyond U+FFFF (emoji), which count twice there."""
    table = utf16_to_index(text)
    if table is None:
        return spans
    # An offset inside a surrogate pair is not a character boundary: left as is, the checks report it.
    return [Span(table.get(s.start, s.start), table.get(s.end, s.end), s.label, s.recorded, s.ref) for s in spans]


def read(path: Path, *, all_records: bool = False) -> list[SpanDoc]:
    records, unit = read_records(path)
    unit = "task" if unit == "record" else unit
    docs: list[SpanDoc] = []
    skipped = 0
    latest_min: dict[Any, tuple[str, int, dict[str, Any]]] = {}
    for place, rec in records:
        where = f"{path}, {unit} {place}"
        rec = require_dict(rec, where, _EXAMPLE)
        if "id" in rec:
            where += f" (id {rec['id']})"
        if isinstance(rec.get("data"), dict) or "annotations" in rec:
            text = _task_text(rec.get("data"), where)
            anns = rec.get("annotations") or []
            if not isinstance(anns, list):
                raise DataError("`annotations` must be a list", where=where, fix="export again from Label Studio (JSON).", code="E2032")
            chosen = _latest([(i, a) for i, a in enumerate(anns) if isinstance(a, dict)])
            if chosen is None:
                skipped += 1
                if all_records:
                    docs.append(SpanDoc(text, [], where, place, meta={"id": rec.get("id"), "data": rec.get("data")}))
                continue
            i, ann = chosen
            ann_where = f"{where}, annotation {ann.get('id', i + 1)}"
            docs.append(SpanDoc(text, _code_points(text, _spans(ann.get("result", []), ann_where)), ann_where, place,
                                meta={"id": rec.get("id"), "data": rec.get("data")}))
            continue
        # JSON-MIN
        if not isinstance(rec.get("text"), str):
            raise DataError("the task has no text (no `text` field, no `data.text`)", where=where,
                            fix="export with Label Studio's JSON or JSON-MIN format; the text must be in the task.", code="E2033")
        key = min_label_key(rec)
        task_id = rec.get("id", f"#{place}")
        stamp = str(rec.get("updated_at") or rec.get("created_at") or "")
        if task_id in latest_min and latest_min[task_id][0] > stamp:
            continue
        latest_min[task_id] = (stamp, len(docs), rec)
        docs.append(SpanDoc(rec["text"], _code_points(rec["text"], _min_spans(rec.get(key, []) if key else [], where)),
                            where, place,
                            meta={"id": rec.get("id")}))
    if latest_min:
        keep = {idx for _, idx, _ in latest_min.values()}
        docs = [d for i, d in enumerate(docs) if i in keep]
    if not docs:
        raise DataError(f"no annotated task ({skipped} task(s) without a non-cancelled annotation)", where=str(path),
                        fix="annotate (and submit) some tasks in Label Studio, then export again.", code="E2034")
    return docs
