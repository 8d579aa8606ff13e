#!/usr/bin/env bash
# Set up and run the training pipeline, offline:
#   bash scripts/pipeline.sh              dvc repro (ingest -> validate -> tokenize -> train -> evaluate -> publish)
#   bash scripts/pipeline.sh -s train     extra arguments go to `dvc repro`
#   bash scripts/pipeline.sh flow         the same pipeline as one Prefect flow run (temporary local server)
#   bash scripts/pipeline.sh serve        serve the Prefect deployments of prefect.yaml (Ctrl-C stops)
# Parameters: params.yaml. Outputs: data/, reports/ (metrics.json, plots/*.png) and the model folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
. .venv/bin/activate

case "${1:-}" in
  flow)
    shift
    exec python -m flows run "$@"
    ;;
  serve)
    shift
    exec python -m flows serve "$@"
    ;;
esac

# DVC needs a git repository (a clone of this one); its config (.dvc/config) is committed.
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "scripts/pipeline.sh: DVC needs a git checkout; run it in a clone of the repository" >&2
  exit 2
fi
dvc repro "$@"
dvc metrics show
echo "plots: reports/plots/*.png (or 'dvc plots show' for the HTML page)"
