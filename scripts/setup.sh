#!/usr/bin/env bash
# Creates (or refreshes) the two environments, idempotently:
#   .venv-addon  Python 3.11+  the add-on server, model conversion and its tests
#   .venv-ha     Python 3.14.2+ Home Assistant, the integration and its tests
# A venv is rebuilt only when its requirement files change (a stamp holds their hash).
#   usage: scripts/setup.sh [addon|ha|all]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
what="${1:-all}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '[setup] %s\n' "$*" >&2; }
# pip warns once per package about this machine's absent local mirrors; keep real errors visible.
pip_q() { "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }

version_ok() {  # version_ok PYTHON MAJOR MINOR MICRO
  "$1" -c "import sys; sys.exit(0 if sys.version_info[:3] >= ($2, $3, $4) else 1)" 2>/dev/null
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

ensure_venv() {  # ensure_venv DIR PYTHON STAMP
  local dir="$1" py="$2" stamp="$3"
  if [ -f "$dir/.homeiq-stamp" ] && [ "$(cat "$dir/.homeiq-stamp")" = "$stamp" ] && "$dir/bin/python" -c '' 2>/dev/null; then
    log "$dir is up to date"
    return 1
  fi
  rm -rf "$dir"
  log "creating $dir with $("$py" -c 'import sys; print(sys.version.split()[0])')"
  if "$py" -m venv "$dir" 2>/dev/null && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    :
  else  # a python without ensurepip (Debian's private build): bootstrap pip from its bundled wheel
    rm -rf "$dir"
    "$py" -m venv --without-pip "$dir"
    local whl
    whl="$(ls "$(dirname "$(dirname "$py")")"/share/python-wheels/pip-*.whl | head -1)"
    "$dir/bin/python" "$whl/pip" install -q --no-index "$whl"
  fi
  return 0
}

setup_addon() {
  local py=""
  for cand in "${HOMEIQ_ADDON_PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null && version_ok "$(command -v "$cand")" 3 11 0; then py="$(command -v "$cand")"; break; fi
  done
  [ -n "$py" ] || { log "need Python >= 3.11 for the add-on environment"; exit 1; }
  local reqs=(addon/requirements.txt addon/requirements-convert.txt requirements-dev-addon.txt)
  local stamp; stamp="$(stamp_of "${reqs[@]}")"
  if ensure_venv .venv-addon "$py" "$stamp"; then
    local t0=$SECONDS
    pip_q .venv-addon/bin/python -m pip install -q --upgrade pip
    local args=(); for r in "${reqs[@]}"; do args+=(-r "$r"); done
    pip_q .venv-addon/bin/python -m pip install -q "${args[@]}"
    # optimum-intel pulls torchvision, which breaks transformers imports beside the CPU torch; text models need none.
    .venv-addon/bin/python -m pip uninstall -y -q torchvision 2>/dev/null || true
    echo "$stamp" > .venv-addon/.homeiq-stamp
    log "add-on environment ready in $((SECONDS - t0)) s"
  fi
}

find_python314() {
  for cand in "${HOMEIQ_HA_PYTHON:-}" python3.14 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null && version_ok "$(command -v "$cand")" 3 14 2; then command -v "$cand"; return; fi
  done
  local prefix="${XDG_CACHE_HOME:-$HOME/.cache}/homeiq/python3.14-debian"
  log "no python3.14 (>= 3.14.2) on PATH: using Debian's CPython 3.14 installed privately in $prefix"
  "$ROOT/scripts/install-python314.sh" "$prefix"
}

setup_ha() {
  local reqs=(requirements-ha.txt)
  local stamp; stamp="$(stamp_of "${reqs[@]}")"
  if [ -f .venv-ha/.homeiq-stamp ] && [ "$(cat .venv-ha/.homeiq-stamp)" = "$stamp" ]; then
    log ".venv-ha is up to date"; return
  fi
  local py; py="$(find_python314)"
  if ensure_venv .venv-ha "$py" "$stamp"; then
    local t0=$SECONDS
    pip_q .venv-ha/bin/python -m pip install -q --upgrade pip
    pip_q .venv-ha/bin/python -m pip install -q -r requirements-ha.txt
    echo "$stamp" > .venv-ha/.homeiq-stamp
    log "Home Assistant environment ready in $((SECONDS - t0)) s"
  fi
}

case "$what" in
  addon) setup_addon ;;
  ha) setup_ha ;;
  all) setup_addon; setup_ha ;;
  *) echo "usage: $0 [addon|ha|all]" >&2; exit 2 ;;
esac
