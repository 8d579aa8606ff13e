"""Pipeline room: the stages that dvc.yaml runs and the Prefect tasks wrap (ingest, validate,
tokenize, train, evaluate, publish), their paths, content keys, stored datasets and the
retraining decision. Orchestrator-free: nothing here imports Prefect or DVC."""
