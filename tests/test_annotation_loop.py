"""The annotate -> train -> pre-annotate loop against a real Label Studio server (the `labelstudio`
fixture), with the `tokclf` command in a subprocess where a user would run it:

create a project with tokclf's NER labeling config -> import tasks carrying `tokclf predict
--output-format labelstudio` predictions (the server holds them) -> annotate through the API as an
annotator's Submit does (one task annotated twice, one cancelled) -> export -> `tokclf train` on
the export -> new tasks -> `push_preannotations` gives exactly the tasks without a prediction one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_ner_sentences  # tests/ is on sys.path

from tokclf.data.labelstudio_api import LabelStudioClient

pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]
TOKCLF = str(Path(sys.executable).parent / "tokclf")
TYPES = ["PER", "ORG", "LOC"]
TINY = ["--max-seq-length", "32", "--stride", "4", "--batch-size", "8", "--lr", "5e-3", "--logging-steps", "2",
        "--log", "none", "--seed", "13"]


def tokclf(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([TOKCLF, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"tokclf {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def as_text(sentence: dict) -> tuple[str, list[dict]]:
    """The sentence's words joined by spaces, and its gold entities as Label Studio results."""
    text, starts, pos = " ".join(sentence["tokens"]), [], 0
    for word in sentence["tokens"]:
        starts.append(pos)
        pos += len(word) + 1
    results, current = [], None
    for i, (word, tag) in enumerate(zip(sentence["tokens"], sentence["tags"])):
        if tag.startswith("B-") or tag == "O":
            current = None
        if tag.startswith("B-"):
            current = {"type": "labels", "from_name": "label", "to_name": "text",
                       "value": {"start": starts[i], "end": starts[i] + len(word), "labels": [tag[2:]]}}
            results.append(current)
        elif tag.startswith("I-") and current is not None:
            current["value"]["end"] = starts[i] + len(word)
    for r in results:
        r["value"]["text"] = text[r["value"]["start"]:r["value"]["end"]]
    return text, results


def spans(results: list[dict]) -> list[tuple]:
    return [(r["value"]["start"], r["value"]["end"], r["value"]["text"], tuple(r["value"]["labels"])) for r in results]


def test_annotate_train_preannotate_loop(labelstudio, tiny_model_dir, ner_jsonl_dir, tmp_path):
    from tokclf.inference.predictor import Predictor
    from tokclf.inference.preannotate import ner_label_config, push_preannotations

    client = LabelStudioClient(labelstudio.url, labelstudio.token)
    project = client.create_project("tokclf loop", ner_label_config(TYPES))
    assert "<Label value=\"LOC\"/>" in client.project(project)["label_config"]

    # A first model (trained on tag data) pre-annotates the tasks before anyone labels them.
    tokclf(tmp_path, "train", "--model", str(tiny_model_dir), "--data-path", str(ner_jsonl_dir), "--project-name",
           "m0", "--epochs", "2", "--valid-split", "validation", *TINY)
    sentences = make_ner_sentences(36, seed=7)
    texts = [as_text(s) for s in sentences]
    (tmp_path / "texts.txt").write_text("".join(t + "\n" for t, _ in texts), encoding="utf-8")
    tokclf(tmp_path, "predict", "--model", "m0", "-i", "texts.txt", "-o", "preannotations.json",
           "--output-format", "labelstudio", "--model-version", "m0")
    preannotated = json.loads((tmp_path / "preannotations.json").read_text(encoding="utf-8"))
    assert [t["data"]["text"] for t in preannotated] == [t for t, _ in texts]
    ids = client.import_tasks(project, preannotated)

    # The server holds the pre-annotations as imported: spans, per-span and per-task scores, version.
    assert client.tasks_without_predictions(project) == []
    for task_id, task in zip(ids, preannotated):
        (stored,) = client.predictions(task_id)
        (sent,) = task["predictions"]
        assert stored["model_version"] == "m0" and stored["score"] == pytest.approx(sent["score"])
        assert spans(stored["result"]) == spans(sent["result"])
        assert [r.get("score") for r in stored["result"]] == [r.get("score") for r in sent["result"]]

    # Annotators correct the tasks: 30 submitted; task 0 first wrongly, then again (the latest
    # counts); task 30 cancelled; 31-35 left alone.
    wrong = [dict(texts[0][1][0], value={**texts[0][1][0]["value"], "labels": ["LOC"]})]
    client.create_annotation(ids[0], wrong)
    for task_id, (_, gold) in zip(ids[:30], texts[:30]):
        client.create_annotation(task_id, gold)
    client.create_annotation(ids[30], texts[30][1], was_cancelled=True)

    export = client.export(project)
    (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    assert len(export) == 31  # annotated tasks, the cancelled one included: the reader skips it

    # Train from the export as a user would, then check what training read.
    tokclf(tmp_path, "train", "--model", str(tiny_model_dir), "--data-path", "export.json", "--project-name", "m1",
           "--epochs", "3", "--validation-split-ratio", "0.2", *TINY)
    report = json.loads((tmp_path / "m1" / "validation_report.json").read_text(encoding="utf-8"))
    splits = report["stats"]["splits"]
    assert splits["train"]["sentences"] + splits["validation"]["sentences"] == 30
    labels = json.loads((tmp_path / "m1" / "config.json").read_text(encoding="utf-8"))["id2label"].values()
    assert sorted(labels) == sorted(["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"])

    # New tasks arrive without predictions; the new model pre-annotates exactly those.
    new_texts = [as_text(s)[0] for s in make_ner_sentences(5, seed=8)]
    new_ids = client.import_tasks(project, [{"data": {"text": t}} for t in new_texts])
    assert [t["id"] for t in client.tasks_without_predictions(project)] == new_ids
    pushed = push_preannotations(client, project, Predictor(tmp_path / "m1"), model_version="m1")
    assert pushed["pushed"] == 5 and sorted(pushed["task_ids"]) == sorted(new_ids) and pushed["without_text"] == []
    assert client.tasks_without_predictions(project) == []
    for task_id, text in zip(new_ids, new_texts):
        (stored,) = client.predictions(task_id)
        assert stored["model_version"] == "m1" and 0 < stored["score"] <= 1
        for start, end, span_text, labels in spans(stored["result"]):
            assert text[start:end] == span_text and labels[0] in TYPES
    # Nothing more to do: a second push finds no task without a prediction.
    assert push_preannotations(client, project, Predictor(tmp_path / "m1"), model_version="m1")["pushed"] == 0
    client.close()
