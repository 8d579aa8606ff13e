"""The training flow `token-classification`: ingest -> validate -> tokenize -> train -> evaluate -> publish.

Every step is a task of `tasks/` calling a tokclf.pipeline.stages entry point; outputs land in the paths
that dvc.yaml declares (tokclf.pipeline.PipelinePaths under `workdir`), so `dvc commit` can record
what a flow run produced (`record_with_dvc`).

Parameters: `params` is tokclf's own pydantic model (TokenClassificationParams), so the
deployment's parameter form in the Prefect UI lists every training parameter; leave it empty to
read `config` (params.yaml) at run time. Do not put a Hub token there (Prefect stores flow
parameters; the token field is masked): set HF_TOKEN for the worker, or name a Prefect Secret
block in `hub_token_secret` (read inside the publish task, never stored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from prefect import flow, get_run_logger

from tasks import (
    dvc_record_task,
    evaluate_task,
    ingest_task,
    publish_task,
    results_storage,
    tokenize_task,
    train_task,
    validate_task,
)
from tokclf.core.params import TokenClassificationParams
from tokclf.pipeline import keys
from tokclf.pipeline.paths import PipelinePaths, load_params, params_for_root

FLOW_NAME = "token-classification"


def resolve_run(params: TokenClassificationParams | None, config: str, workdir: str
                ) -> tuple[TokenClassificationParams, TokenClassificationParams, PipelinePaths, bool]:
    """(params as given or read, params with paths made absolute under workdir, paths, whether
    params equal the project's params.yaml, i.e. DVC may record the outputs as that file's)."""
    root = Path(workdir).expanduser().resolve()
    config_path = Path(config).expanduser()
    config_path = config_path if config_path.is_absolute() else root / config_path
    if params is None:
        params = load_params(config_path)
    repo_params = root / "params.yaml"
    same = repo_params.is_file() and load_params(repo_params).model_dump() == params.model_dump()
    run_params = params_for_root(params, root)
    return params, run_params, PipelinePaths.for_params(run_params, root), same


def _fresh(key: str | None, folders: list[Path], files: tuple[Path, ...] = ()) -> bool:
    """A cached result may be reused only while its output folders still carry its key."""
    return key is not None and all(keys.stamp_key(f) == key for f in folders) and all(p.is_file() for p in files)


def run_cached(task: Any, key: str | None, folders: list[Path], storage: Path, *, files: tuple[Path, ...] = (),
               **kwargs: Any) -> tuple[Any, str]:
    """Run a cached task (refreshing its cache when the outputs on disk are not the cached ones);
    returns (result, final state name: "Cached" when it was skipped)."""
    fresh = _fresh(key, folders, files)
    state = task.with_options(result_storage=storage, refresh_cache=not fresh)(**kwargs, return_state=True)
    return state.result(), state.name


def prepare_data(run_params: TokenClassificationParams, paths: PipelinePaths, storage: Path,
                 source_name: str | list[str] | None = None) -> dict[str, Any]:
    """ingest and validate (both cached on content); shared by the training and retraining flows.
    source_name: data_path as params.yaml writes it (messages and outputs then match `dvc repro`'s)."""
    states: dict[str, str] = {}
    ingested, states["ingest"] = run_cached(
        ingest_task, keys.ingest_key(run_params), [paths.raw, paths.prepared], storage,
        params=run_params, raw_dir=str(paths.raw), out_dir=str(paths.prepared), source_name=source_name,
    )
    validated, states["validate"] = run_cached(
        validate_task, keys.validate_key(run_params, paths.prepared), [paths.validated], storage,
        files=(paths.validation_report,), params=run_params, data_dir=str(paths.prepared),
        out_dir=str(paths.validated), report_path=str(paths.validation_report),
    )
    return {"ingest": ingested, "validate": validated, "states": states}


@flow(name=FLOW_NAME, log_prints=True)
def training_flow(
    params: TokenClassificationParams | None = None,
    config: str = "params.yaml",
    workdir: str = ".",
    record_with_dvc: bool = False,
    dvc_push: bool = False,
    hub_token_secret: str | None = None,
) -> dict[str, Any]:
    """Train and evaluate a token-classification model; publish it when push_to_hub is true.

    params: training parameters (empty: read `config` when the run starts).
    config: parameters file, relative to workdir.
    workdir: project root (the folder holding dvc.yaml); outputs go to its data/, reports/ and
        project_name.
    record_with_dvc: `dvc commit` the outputs afterwards (only when params equal params.yaml's:
        dvc.lock must describe what was run); dvc_push: also `dvc push` to the default remote.
    hub_token_secret: name of a Prefect Secret block holding the Hub token (push_to_hub only).
    """
    logger = get_run_logger()
    params, run_params, paths, same_as_repo = resolve_run(params, config, workdir)
    if run_params.push_to_hub:
        # Token, repo id, offline mode and the token's rights: refused before training, not after.
        from tasks.hub import with_secret_token
        from tokclf.publishing.hub import check_publish_ready

        check_publish_ready(with_secret_token(run_params, hub_token_secret))
    storage = results_storage(paths.root)
    prepared = prepare_data(run_params, paths, storage, source_name=params.data_path)
    states = prepared["states"]
    features, states["tokenize"] = run_cached(
        tokenize_task, keys.tokenize_key(run_params, paths.validated), [paths.features], storage,
        params=run_params, data_dir=str(paths.validated), out_dir=str(paths.features),
    )
    reused = [name for name, state in states.items() if state == "Cached"]
    if reused:
        logger.info("reused cached results of %s (same data content, tokenizer and settings)", ", ".join(reused))
    trained = train_task(params=run_params, data_dir=str(paths.validated), features_dir=str(paths.features),
                         report_path=str(paths.validation_report), out_dir=str(paths.model))
    evaluated = evaluate_task(params=run_params, model_dir=str(paths.model), data_dir=str(paths.validated),
                              features_dir=str(paths.features), metrics_path=str(paths.metrics),
                              details_path=str(paths.evaluation), plots_dir=str(paths.plots))
    published = publish_task(params=run_params, model_dir=str(paths.model), out_path=str(paths.publish),
                             hub_token_secret=hub_token_secret)
    recorded = None
    if record_with_dvc:
        if same_as_repo:
            recorded = dvc_record_task(root=str(paths.root), push=dvc_push)
        else:
            logger.warning("not recorded with DVC: these parameters differ from %s, which dvc.lock would claim",
                           paths.root / "params.yaml")
    metrics = evaluated["metrics"]
    logger.info("%s F1 %.4f; model in %s; metrics in %s", evaluated["main_split"], metrics["f1"], paths.model,
                paths.metrics)
    return {
        "model": str(paths.model), "metrics_path": str(paths.metrics), "metrics": metrics,
        "main_split": evaluated["main_split"], "run_id": trained["run_id"], "stages": states,
        "publish": {k: published.get(k) for k in ("status", "reason", "repo_id")},
        "dvc": recorded, "features": features.get("features"),
    }
