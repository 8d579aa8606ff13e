#!/usr/bin/env bash
# Set up and run the speed benchmark from a fresh clone: bench/run.py (quick mode by default;
# pass --full for all of CoNLL-2003). Needs ../shared/data/conll2003 or $TOKCLF_SHARED_DATA.
# Results: bench/results/bench-<mode>.json; the figures go into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
. .venv/bin/activate
python bench/run.py "$@"
