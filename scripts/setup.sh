#!/usr/bin/env bash
# Create .venv and install tokclf with everything the tests and the default job need. Offline
# apart from PyPI. torch is installed first, pinned to the CPU wheel this machine image carries:
# any torch requirement it does not satisfy would download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q -e ".[all,test]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import tokclf, torch, transformers; print('tokclf', tokclf.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
