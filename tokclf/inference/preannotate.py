"""Pre-annotations for a Label Studio project: predict the tasks that have no prediction yet and push
the predictions to them, so annotators correct the model instead of labelling from scratch.

    from tokclf.data.labelstudio_api import LabelStudioClient, token_from_env
    from tokclf.inference.predictor import Predictor
    from tokclf.inference.preannotate import ner_label_config, push_preannotations

    with LabelStudioClient(url, token_from_env()) as client:
        project = client.create_project("diseases", ner_label_config(["Disease", "Chemical"]))
        push_preannotations(client, project, Predictor("outputs/model"), model_version="run-1")

The predictions become Label Studio results through `tokclf.inference.annotations.to_labelstudio_tasks`
(the writer `tokclf predict --output-format labelstudio` uses), so a pushed pre-annotation and an
imported prediction file are the same JSON. The labeling config and those results share the control
names (`<Labels name="label" toName="text">`): a project made with `ner_label_config` accepts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from tokclf.core.errors import TokclfError
from tokclf.data.labelstudio_api import LabelStudioClient
from tokclf.data.schemes import entity_types
from tokclf.inference.annotations import LS_FROM_NAME, LS_TO_NAME, to_labelstudio_tasks
from tokclf.inference.predictor import Predictor
from tokclf.inference.records import PredictionInput


def ner_label_config(types: Sequence[str], *, from_name: str = LS_FROM_NAME, to_name: str = LS_TO_NAME,
                     data_key: str = "text") -> str:
    """A Label Studio labeling config for span labelling of `types` over the task's `data_key`
    text (word-granular selection: spans snap to whole words, which is what tokclf trains on)."""
    if not types:
        raise TokclfError("no entity types for the labeling config", where="ner_label_config",
                          fix="pass the entity types (e.g. entity_types(model.label_names)).", code="E3028")
    labels = "\n".join(f"    <Label value={quoteattr(t)}/>" for t in types)
    return (f"<View>\n  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>\n{labels}\n  </Labels>\n"
            f"  <Text name={quoteattr(to_name)} value={quoteattr('$' + data_key)} granularity=\"word\"/>\n</View>\n")


def model_entity_types(predictor: Predictor) -> list[str]:
    """The entity types a BIO model predicts (B-Disease, I-Disease -> Disease)."""
    return entity_types(predictor.label_names)


def push_preannotations(
    client: LabelStudioClient,
    project: int,
    predictor: Predictor,
    *,
    model_version: str,
    tasks: list[dict[str, Any]] | None = None,
    data_key: str = "text",
    from_name: str = LS_FROM_NAME,
    to_name: str = LS_TO_NAME,
) -> dict[str, Any]:
    """Predict `tasks` (default: the project's tasks without any prediction) and create one
    prediction per task on the server. Tasks whose data has no text under `data_key` are left
    alone and listed. Returns {"pushed", "task_ids", "without_text", "model_version"}."""
    todo = client.tasks_without_predictions(project) if tasks is None else tasks
    inputs, without_text = [], []
    for task in todo:
        text = (task.get("data") or {}).get(data_key)
        if isinstance(text, str) and text.strip():
            inputs.append(PredictionInput(text=text, meta={"id": task["id"]}, document=True))
        else:
            without_text.append(task["id"])
    pushed = []
    if inputs:
        records = predictor.predict(inputs)
        for task in to_labelstudio_tasks(records, model_version=model_version, from_name=from_name, to_name=to_name,
                                         data_key=data_key):
            prediction = task["predictions"][0]
            client.create_prediction(task["id"], result=prediction["result"], score=prediction.get("score"),
                                     model_version=model_version)
            pushed.append(task["id"])
    return {"pushed": len(pushed), "task_ids": pushed, "without_text": without_text, "model_version": model_version}
