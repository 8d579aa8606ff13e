#!/usr/bin/env bash
# Install Label Studio (the annotation server the annotation-loop tests run against) into its own
# cached virtual environment, outside the repo: label-studio 1.23 pins Django 5.2, pyarrow, pytz and
# more, which must not mix with tokclf's environment. tokclf talks to it over HTTP only.
#
#   bash scripts/setup_labelstudio.sh        # installs once, then prints the label-studio executable
#
# TOKCLF_LABEL_STUDIO_VENV overrides the place (default: ~/.cache/tokclf/label-studio-<version>);
# tests/labelstudio_server.py computes the same default. A rerun is a no-op once installed; the
# first install took 74 s and ~1 GB on 2 cores.
set -euo pipefail
VERSION=1.23.2
VENV=${TOKCLF_LABEL_STUDIO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokclf/label-studio-$VERSION}
MARKER="$VENV/.tokclf-installed"   # written last: a half-finished install is never taken as complete
PY=${PYTHON:-python3}
if [ -f "$MARKER" ] && [ -x "$VENV/bin/label-studio" ]; then
  echo "$VENV/bin/label-studio"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q "label-studio==$VERSION" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import label_studio; assert label_studio.__version__ == '$VERSION', label_studio.__version__"
echo "label-studio==$VERSION" > "$MARKER"
echo "$VENV/bin/label-studio"
