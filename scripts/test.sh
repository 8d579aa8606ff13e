#!/usr/bin/env bash
# Set up and run the whole test suite (unit + integration on ../shared/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Label Studio for the annotation-loop tests: its own cached venv (its pins clash with ours);
# the main job does not need it.
bash scripts/setup_labelstudio.sh >/dev/null
. scripts/env.sh
. .venv/bin/activate
python -m pytest -q -ra "$@"
