"""Pipeline stages (tokclf.pipeline.stages) through the Prefect tasks' `.fn()` and the `tokclf stage` CLI, on
the tiny random BERT: outputs, content-based cache keys, hard validation errors, retrain decisions."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

from tokclf.core.errors import TokclfError, ValidationFailed
from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline import keys, retrain, stages, store
from tokclf.pipeline.paths import (
    EVALUATION,
    FEATURES,
    METRICS,
    PLOTS,
    PREPARED,
    PUBLISH,
    RAW,
    RUN_RECORD,
    STAGES,
    VALIDATED,
    VALIDATION_REPORT,
    PipelinePaths,
)

pytestmark = pytest.mark.timeout(600)


def tiny(tiny_model_dir: Path, data: Path, root: Path, **kw) -> TokenClassificationParams:
    base = dict(
        data_path=str(data), model=str(tiny_model_dir), project_name=str(root / "outputs" / "tiny"),
        valid_split="validation", lr=5e-3, epochs=1, batch_size=8, max_seq_length=32, stride=4, logging_steps=2,
        seed=13,
    )
    base.update(kw)
    return TokenClassificationParams(**base)


@pytest.fixture(scope="module")
def run(tiny_model_dir, ner_jsonl_dir, tmp_path_factory):
    """All six stages once, each through its Prefect task's .fn()."""
    import tasks

    root = tmp_path_factory.mktemp("project")
    data = root / "source"
    shutil.copytree(ner_jsonl_dir, data)
    params = tiny(tiny_model_dir, data, root)
    paths = PipelinePaths.for_params(params, root)
    results = {
        "ingest": tasks.ingest_task.fn(params, str(paths.raw), str(paths.prepared)),
        "validate": tasks.validate_task.fn(params, str(paths.prepared), str(paths.validated), str(paths.validation_report)),
        "tokenize": tasks.tokenize_task.fn(params, str(paths.validated), str(paths.features)),
    }
    results["train"] = tasks.train_task.fn(params, str(paths.validated), str(paths.features),
                                           str(paths.validation_report), str(paths.model))
    results["evaluate"] = tasks.evaluate_task.fn(params, str(paths.model), str(paths.validated), str(paths.features),
                                                 str(paths.metrics), str(paths.evaluation), str(paths.plots))
    results["publish"] = tasks.publish_task.fn(params, str(paths.model), str(paths.publish))
    return params, paths, results


def test_ingest_copies_source_and_normalises(run, ner_jsonl_dir):
    params, paths, results = run
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl"):
        assert (paths.raw / name).read_bytes() == (ner_jsonl_dir / name).read_bytes()
    data = store.load_labelled(paths.prepared)
    assert {n: len(ds) for n, ds in data.splits.items()} == {"train": 48, "validation": 12, "test": 12}
    assert data.label_names[0] == "O" and "B-PER" in data.label_names
    # messages name the user's source, not the snapshot
    assert all(str(paths.raw) not in s for s in data.sources.values())
    assert results["ingest"]["splits"] == {"train": 48, "validation": 12, "test": 12}
    assert keys.stamp_key(paths.prepared) == results["ingest"]["key"] == keys.ingest_key(params)


def test_validate_and_tokenize_outputs(run):
    params, paths, results = run
    report = json.loads(paths.validation_report.read_text())
    assert report["ok"] is True
    assert keys.stamp_key(paths.validated) == keys.validate_key(params, paths.prepared)
    features, meta = store.load_features(paths.features)
    assert set(features) == {"train", "validation", "test"}
    assert "labels" in features["train"].column_names and "labels" not in features["test"].column_names
    assert meta["max_seq_length"] == 32 and meta["stride"] == 4 and meta["subword_labels"] == params.subword_labels
    assert meta["key"] == keys.stamp_key(paths.features) == keys.tokenize_key(params, paths.validated)
    # no cache files were written into the inputs (DVC has hashed them as another stage's output)
    assert not list(paths.prepared.rglob("cache-*.arrow")) and not list(paths.validated.rglob("cache-*.arrow"))


def test_train_writes_model_folder(run):
    params, paths, results = run
    for name in ("model.safetensors", "config.json", "tokenizer.json", "training_params.json", "metrics.json",
                 "training_log.json", "validation_report.json", "README.md", RUN_RECORD):
        assert (paths.model / name).is_file(), name
    metrics = json.loads((paths.model / "metrics.json").read_text())
    assert {"train", "validation"} <= set(metrics) and "test" not in metrics
    record = json.loads((paths.model / RUN_RECORD).read_text())
    assert record["data_fingerprint"] == keys.dataset_fingerprint(paths.validated)
    assert record["features_key"] == keys.stamp_key(paths.features)


def test_evaluate_metrics_and_plots(run):
    params, paths, results = run
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["f1"] == metrics["test"]["f1"]  # the main split is test when there is one
    assert {"validation", "test", "train"} <= set(metrics)
    assert all(isinstance(v, (int, float)) for v in metrics["test"].values())
    details = json.loads(paths.evaluation.read_text())
    assert details["main_split"] == "test" and set(details["scores"]["test"]["per_type"]) == {"PER", "ORG", "LOC"}
    assert details["model"]["run_id"] == results["train"]["run_id"]
    loss = json.loads((paths.plots / "train_loss.json").read_text())
    assert loss and {"step", "loss"} <= set(loss[0])
    # One row per evaluation during training, with the Trainer's own scores (1 epoch: one evaluation).
    log = json.loads((paths.model / "training_log.json").read_text())
    evals = [(e["step"], e["eval_f1"]) for e in log if "eval_f1" in e]
    assert len(evals) == 1
    assert [(r["step"], r["f1"]) for r in json.loads((paths.plots / "eval_f1.json").read_text())] == evals
    assert {r["type"] for r in json.loads((paths.plots / "per_type_f1.json").read_text())} == {"PER", "ORG", "LOC"}
    lines = (paths.plots / "confusion.csv").read_text().splitlines()
    assert lines[0] == "actual,predicted" and len(lines) - 1 == metrics["test"]["words"]
    for png in ("training_curves.png", "per_type_f1.png", "confusion.png"):
        assert (paths.plots / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_publish_is_a_recorded_no_op(run):
    params, paths, results = run
    assert results["publish"]["status"] == "skipped"
    assert json.loads(paths.publish.read_text())["status"] == "skipped"


def test_cache_keys_follow_content_not_paths(run, tmp_path):
    """tokenize: same content elsewhere -> same key; any byte, tokenizer file or setting -> another."""
    import tasks

    params, paths, _ = run
    key = tasks.tokenize_cache_key(None, {"params": params, "data_dir": str(paths.validated), "out_dir": "f"})
    copy = tmp_path / "validated-copy"
    shutil.copytree(paths.validated, copy)
    assert keys.tokenize_key(params, copy) == keys.tokenize_key(params, paths.validated)
    base = keys.tokenize_key(params, paths.validated)
    assert keys.tokenize_key(params.model_copy(update={"lr": 1.0}), paths.validated) == base
    other = "first" if params.subword_labels == "all" else "all"
    for change in ({"max_seq_length": 40}, {"stride": 5}, {"subword_labels": other}):
        assert keys.tokenize_key(params.model_copy(update=change), paths.validated) != base, change
    # the same path with other content
    arrow = next(copy.rglob("data-*.arrow"))
    arrow.write_bytes(arrow.read_bytes() + b"\0")
    assert keys.tokenize_key(params, copy) != base
    # another tokenizer file content at the same model path
    model = tmp_path / "model"
    shutil.copytree(Path(params.model), model)
    moved = params.model_copy(update={"model": str(model)})
    same = keys.tokenize_key(moved, paths.validated)
    assert same == base
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 77
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert keys.tokenize_key(moved, paths.validated) != base
    # the task's key adds the output path to the stage key
    assert key.startswith(base)
    # ingest: content of the source, not its path
    src = tmp_path / "src"
    shutil.copytree(params.data_path, src)
    assert keys.source_fingerprint(str(src)) == keys.source_fingerprint(params.data_path)
    (src / "train.jsonl").write_text((src / "train.jsonl").read_text().replace("Paris", "Lyon"))
    assert keys.source_fingerprint(str(src)) != keys.source_fingerprint(params.data_path)
    assert keys.ingest_key(params.model_copy(update={"data_path": "someone/hub-dataset"})) is None


def test_validation_errors_write_report_and_stop(tiny_model_dir, tmp_path):
    import tasks

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n{"tokens": ["c"], "tags": ["O"]}\n')
    params = tiny(tiny_model_dir, bad, tmp_path, valid_split=None)
    paths = PipelinePaths.for_params(params, tmp_path)
    tasks.ingest_task.fn(params, str(paths.raw), str(paths.prepared))
    with pytest.raises(ValidationFailed) as exc:
        tasks.validate_task.fn(params, str(paths.prepared), str(paths.validated), str(paths.validation_report))
    assert "bad.jsonl" in str(exc.value) and "line 1" in str(exc.value)
    report = json.loads(paths.validation_report.read_text())
    assert report["ok"] is False and report["num_errors"] == 1
    assert not paths.validated.exists()


def test_train_refuses_stale_features(run, tmp_path):
    params, paths, _ = run
    other = params.model_copy(update={"max_seq_length": 40})
    with pytest.raises(TokclfError) as exc:
        stages.train(other, data_dir=paths.validated, features_dir=paths.features,
                     report_path=paths.validation_report, out_dir=tmp_path / "m")
    assert "max_seq_length" in str(exc.value) and "tokenize" in str(exc.value)
    assert not (tmp_path / "m").exists()


def test_retrain_decision(run, tmp_path):
    params, paths, results = run
    train_again, why = retrain.retrain_decision(params, paths)
    assert not train_again and "unchanged" in why
    train_again, why = retrain.retrain_decision(params.model_copy(update={"lr": 0.5}), paths)
    assert train_again and "parameters changed" in why
    assert retrain.retrain_decision(params.model_copy(update={"log": "tensorboard"}), paths)[0] is False
    moved = PipelinePaths.for_params(params, tmp_path)  # nothing there
    assert retrain.last_successful_run(moved) is None


def test_stage_cli_and_replacing_outputs(run, tmp_path, capsys):
    """`tokclf stage ingest` with params.yaml sections; a folder not written by a stage is never replaced."""
    import yaml

    from tokclf.cli.main import main as cli_main

    params, paths, _ = run
    config = tmp_path / "params.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"data_path": params.data_path, "valid_split": "validation", "seed": 13},
        "tokenize": {"model": params.model, "max_seq_length": 32, "stride": 4},
        "train": {"project_name": str(tmp_path / "m")},
    }))
    rc = cli_main(["stage", "ingest", "--config", str(config), "--raw", str(tmp_path / "raw"),
                   "--out", str(tmp_path / "prepared")])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"] == 48
    assert keys.dataset_fingerprint(tmp_path / "prepared") == keys.dataset_fingerprint(paths.prepared)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    rc = cli_main(["stage", "ingest", "--config", str(config), "--raw", str(tmp_path / "raw2"), "--out", str(mine)])
    assert rc == 2 and (mine / "notes.txt").read_text() == "keep"
    assert "refusing" in capsys.readouterr().err


def test_pipeline_paths_match_dvc_yaml():
    """The flows write where dvc.yaml's stages read and write."""
    import yaml

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def paths_of(entries):
        return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}

    assert list(spec) == list(STAGES)
    assert paths_of(spec["ingest"]["outs"]) == {RAW, PREPARED}
    assert paths_of(spec["validate"]["outs"]) == {VALIDATED, VALIDATION_REPORT}
    assert paths_of(spec["tokenize"]["outs"]) == {FEATURES}
    assert paths_of(spec["train"]["outs"]) == {"${train.project_name}"}
    assert paths_of(spec["evaluate"]["metrics"]) == {METRICS}
    assert paths_of(spec["evaluate"]["outs"]) == {EVALUATION, PLOTS}
    assert paths_of(spec["publish"]["outs"]) == {PUBLISH}
    for name, stage in spec.items():
        assert stage["cmd"].startswith(f"tokclf stage {name} "), name
        assert {"tokclf/core", "tokclf/pipeline"} <= set(stage["deps"]), name
    # each stage's params exist in params.yaml
    repo_params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in spec.items():
        for key in stage.get("params", []):
            node = repo_params
            for part in key.split("."):
                assert part in node, f"{name}: {key} missing from params.yaml"
                node = node[part]


def test_train_stage_under_torchrun(run, tmp_path):
    """Two processes (torchrun, gloo on CPU; `accelerate launch --multi_gpu` sets the same variables):
    both train, rank 0 alone scores and writes the model folder."""
    import subprocess

    import yaml

    params, paths, _ = run
    config = tmp_path / "params.yaml"
    config.write_text(yaml.safe_dump(params.model_dump(mode="json", exclude={"token"})))
    out = tmp_path / "ddp-model"
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "tokclf.cli", "stage", "train",
         "--config", str(config), "--data", str(paths.validated), "--features", str(paths.features),
         "--report", str(paths.validation_report), "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stdout.count('"stage": "train"') == 2 and proc.stdout.count('"run_id": null') == 1
    assert (out / "model.safetensors").is_file() and (out / RUN_RECORD).is_file()
    assert "validation" in json.loads((out / "metrics.json").read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ddp-model")] == []  # nothing left over


def test_train_task_child_process_errors(run, tmp_path):
    """The Prefect train task's child process (tokclf.pipeline.train_process): a tokclf error in it
    (here: no features folder) comes back as a TokclfError carrying the child's message, which the
    task does not retry; the way other exits are told apart (a crash is retried)."""
    from prefect.states import Failed

    import tasks
    from tokclf.pipeline.train_process import TrainingCrashed, TrainingProcessError, classify_exit, train_in_child

    params, paths, _ = run
    lines: list[str] = []
    missing = tmp_path / "no-features"
    with pytest.raises(TrainingProcessError) as err:
        train_in_child(params, data_dir=paths.validated, features_dir=missing, report_path=paths.validation_report,
                       out_dir=tmp_path / "model", on_line=lines.append)
    assert err.value.returncode == 2 and "(exit status 2)" in str(err.value) and str(missing) in str(err.value)
    assert "Traceback" not in str(err.value) and any(str(missing) in line for line in lines)
    assert not (tmp_path / "model").exists()
    assert tasks.retry_crashed_training(tasks.train_task, None, Failed(data=err.value)) is False

    run_dir = tmp_path / ".model.run"
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1', "RuntimeError: not enough memory"]
    for code, tail, kind, said in (
        (-9, [], TrainingCrashed, "died of signal SIGKILL (9) (the out-of-memory killer"),
        (-11, [], TrainingCrashed, "died of signal SIGSEGV (11)"),
        (1, traceback, TrainingCrashed, "failed (exit status 1)"),
        (1, ["error: data validation failed"], TrainingProcessError, "stopped with an error (exit status 1)"),
        (143, ["interrupted at step 3 of 9; run the same command again to resume"], TrainingProcessError,
         "interrupted (exit status 143)"),
    ):
        problem = classify_exit(code, tail, run_dir=run_dir)
        assert isinstance(problem, kind) and said in str(problem), (code, str(problem))
        retried = tasks.retry_crashed_training(tasks.train_task, None, Failed(data=problem))
        assert retried is (kind is TrainingCrashed), code
    assert classify_exit(0, [], run_dir=run_dir) is None
