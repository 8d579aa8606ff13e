"""The Prefect flows end to end under prefect_test_harness (temporary SQLite server), on the tiny
random BERT: task caching on content, reuse after a failed run, the retraining decision, the
parameter schema, retries only on publish."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import write_params  # tests/ is on sys.path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings(updates={PREFECT_HOME: str(home), PREFECT_SERVER_ANALYTICS_ENABLED: False,
                                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 180}):
        with prefect_test_harness(server_startup_timeout=180):
            yield home


@pytest.fixture(scope="module")
def project(tiny_model_dir, ner_jsonl_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-project")
    data = root / "source"
    shutil.copytree(ner_jsonl_dir, data)
    write_params(root, tiny_model_dir, data)
    return root


def test_parameter_schema_shows_training_params():
    from flows.retraining import retraining_flow
    from flows.training import training_flow

    schema = training_flow.parameters.model_dump()
    assert {"params", "config", "workdir", "record_with_dvc", "dvc_push"} <= set(schema["properties"])
    definitions = json.dumps(schema.get("definitions") or schema.get("$defs") or {})
    for field in ("lr", "epochs", "max_seq_length", "subword_labels", "data_path"):
        assert f'"{field}"' in definitions, field
    assert training_flow.name == "token-classification"
    assert retraining_flow.name == "token-classification-retrain"


def test_retries_on_transient_publish_errors_and_crashed_training():
    import tasks

    assert tasks.publish_task.retries == 3
    assert list(tasks.publish_task.retry_delay_seconds) == [10, 20, 40]  # exponential backoff
    # The condition retries a failed publish only when the Hub failure is transient.
    from prefect.states import Failed

    from tokclf.publishing.hub import HubAuthError, HubError, HubTransientError

    retry = tasks.publish_task.retry_condition_fn
    assert retry(tasks.publish_task, None, Failed(data=HubTransientError("the Hub answered 503", where="r"))) is True
    for final in (HubAuthError("401", where="r"), HubError("400", where="r"), RuntimeError("bug")):
        assert retry(tasks.publish_task, None, Failed(data=final)) is False, final
    for t in (tasks.ingest_task, tasks.validate_task, tasks.tokenize_task, tasks.evaluate_task):
        assert t.retries == 0, t.name
    # train retries a crash of the training (it resumes from its checkpoints), not a TokclfError.
    from tokclf.core.errors import DataError
    from tokclf.training.signals import TrainingInterrupted

    assert tasks.train_task.retries == tasks.TRAIN_RETRIES == 2
    crashed = tasks.train_task.retry_condition_fn
    assert crashed(tasks.train_task, None, Failed(data=RuntimeError("DefaultCPUAllocator: not enough memory"))) is True
    for final in (DataError("no such file", where="x"), TrainingInterrupted(15, 3, 10)):
        assert crashed(tasks.train_task, None, Failed(data=final)) is False, final


def test_training_flow_end_to_end(harness, project):
    """A run that fails in train, started again, reuses the cached ingest/validate/tokenize results;
    a second run does too; train is never cached; outputs land in dvc.yaml's paths."""
    import torch

    from flows.training import training_flow
    from tokclf.pipeline.paths import (
        EVALUATION,
        FEATURES,
        METRICS,
        PLOTS,
        PREPARED,
        PUBLISH,
        RAW,
        VALIDATED,
        VALIDATION_REPORT,
        load_params,
    )

    failed_in_train = not torch.cuda.is_available()
    if failed_in_train:  # fp16 fails in the train stage on a CPU, after ingest/validate/tokenize ran
        from tokclf.core.errors import EnvironmentProblem

        params = load_params(project / "params.yaml").model_copy(update={"mixed_precision": "fp16"})
        with pytest.raises(EnvironmentProblem):
            training_flow(params=params, workdir=str(project))
        assert (project / FEATURES).is_dir() and not (project / "outputs" / "tiny").exists()
    first = training_flow(workdir=str(project))
    expected = "Cached" if failed_in_train else "Completed"
    assert first["stages"] == {"ingest": expected, "validate": expected, "tokenize": expected}
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["f1"] == first["metrics"]["f1"] and first["main_split"] == "test"
    for rel in (RAW, PREPARED, VALIDATED, FEATURES, VALIDATION_REPORT,
                EVALUATION, PLOTS, PUBLISH, "outputs/tiny/model.safetensors"):
        assert (project / rel).exists(), rel
    assert first["publish"]["status"] == "skipped"
    assert (project / ".tokclf-cache" / "prefect-results").is_dir()  # results persisted locally

    again = training_flow(workdir=str(project))
    assert again["stages"] == {"ingest": "Cached", "validate": "Cached", "tokenize": "Cached"}
    assert again["run_id"] != first["run_id"]  # train itself is never cached


def test_deleted_outputs_are_rebuilt_not_taken_from_cache(harness, project):
    from prefect import flow

    from flows.training import prepare_data, resolve_run
    from tasks import results_storage
    from tokclf.pipeline import keys

    _, run_params, paths, _ = resolve_run(None, "params.yaml", str(project))
    shutil.rmtree(paths.validated)

    @flow(name="prepare-data")
    def prepare() -> dict:
        return prepare_data(run_params, paths, results_storage(project))["states"]

    states = prepare()
    assert states == {"ingest": "Cached", "validate": "Completed"}
    assert keys.stamp_key(paths.validated) == keys.validate_key(run_params, paths.prepared)


def test_retraining_skips_unchanged_data_and_retrains_on_change(harness, project):
    from flows.retraining import retraining_flow

    skipped = retraining_flow(workdir=str(project), record_with_dvc=False)
    assert skipped["trained"] is False and "data unchanged" in skipped["reason"]

    train_file = project / "source" / "train.jsonl"
    lines = train_file.read_text().splitlines()
    train_file.write_text("\n".join(lines[:-4]) + "\n")  # same path, other content
    retrained = retraining_flow(workdir=str(project), record_with_dvc=False)
    assert retrained["trained"] is True and "data changed" in retrained["reason"]
    assert retrained["stages"]["ingest"] == "Cached"  # the subflow reuses what the retrain flow just read
    details = json.loads((project / "reports" / "evaluation.json").read_text())
    assert details["model"]["run_id"] == retrained["run_id"]
    assert retraining_flow(workdir=str(project), record_with_dvc=False)["trained"] is False
