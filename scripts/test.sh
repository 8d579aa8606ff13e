#!/usr/bin/env bash
# Set up and run the whole test suite (unit + integration on ../shared/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
. .venv/bin/activate
python -m pytest -q -ra "$@"
