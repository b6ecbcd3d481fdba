#!/usr/bin/env bash
# The whole test suite: lint (ruff, mypy --strict) and both pytest runs.
#   .venv-addon: tests/addon            (the add-on server and model runtime)
#   .venv-addon: tests/runtime          (the server under .venv-runtime, the image's packages only)
#   .venv-ha:    tests/repo tests/patterns tests/integration, then tests/e2e (real processes)
# Extra arguments go to both pytest runs (e.g. -x, -k name).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1 TOKENIZERS_PARALLELISM=false
fail=0
# Each section's name, wall time and result, printed as a table at the end.
sections=() section_name="" section_start=0 section_fail=0
end_section() {
  [ -n "$section_name" ] || return 0
  local took=$((SECONDS - section_start)) result=ok
  [ "$fail" -eq "$section_fail" ] || result=FAILED
  sections+=("$(printf '%-36s %4d:%02d  %s' "$section_name" $((took / 60)) $((took % 60)) "$result")")
}
step() {  # step TITLE [SHORT NAME for the table]
  end_section
  section_name="${2:-$1}" section_start=$SECONDS section_fail=$fail
  printf '\n=== %s\n' "$1"
}

run_pytest() {  # run_pytest VENV PATHS... -- ARGS...
  local venv="$1"; shift
  local paths=() ; while [ $# -gt 0 ] && [ "$1" != "--" ]; do [ -e "$1" ] && paths+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  if [ ${#paths[@]} -eq 0 ]; then echo "no test folders"; return 0; fi
  "$venv/bin/python" -m pytest "${paths[@]}" "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "pytest collected no tests in ${paths[*]}"; return 0; fi
  return $rc
}

total_start=$SECONDS
step "set-up (scripts/setup.sh, idempotent)" "set-up"
scripts/setup.sh all || exit 1

step "ruff"
.venv-addon/bin/ruff check . || fail=1
.venv-addon/bin/ruff format --check . || fail=1

shopt -s nullglob globstar
py_files() { local f; for f in "$@"; do [ -f "$f" ] && echo "$f"; done; }

step "mypy --strict (add-on, Python $(.venv-addon/bin/python -c 'import sys;print(sys.version.split()[0])'))" "mypy --strict: add-on"
# scripts/bench_patterns.py and bench_history_writes.py import the integration package, so the HA step checks them.
mapfile -t addon_py < <(py_files addon/homeiq_addon/**/*.py scripts/*.py | grep -vx -e 'scripts/bench_patterns.py' -e 'scripts/bench_history_writes.py')
[ ${#addon_py[@]} -eq 0 ] || .venv-addon/bin/mypy "${addon_py[@]}" || fail=1

step "mypy --strict (integration, Python $(.venv-ha/bin/python -c 'import sys;print(sys.version.split()[0])'))" "mypy --strict: integration"
mapfile -t ha_py < <(py_files custom_components/homeiq/**/*.py demo/*.py evaluation/**/*.py scripts/bench_patterns.py scripts/bench_history_writes.py)
[ ${#ha_py[@]} -eq 0 ] || .venv-ha/bin/mypy "${ha_py[@]}" || fail=1

step "pytest: add-on"
run_pytest .venv-addon tests/addon -- -p no:cacheprovider "$@" || fail=1

# The add-on image's own environment (.venv-runtime: requirements.txt + the lock, no torch, no nncf)
# serves tiny hub repositories laid out like the real ones; the test side builds them in .venv-addon.
step "runtime image environment (torch-free, $(du -sm .venv-runtime | cut -f1) MB; limit 500 MB)" "runtime image environment"
if .venv-runtime/bin/python -c 'import torch' 2>/dev/null; then echo "torch is importable in .venv-runtime"; fail=1; fi
run_pytest .venv-addon tests/runtime -- -p no:cacheprovider "$@" || fail=1

step "pytest: repository, patterns, integration" "pytest: repo, patterns, integration"
# Coverage of the integration (and its pattern engine) must stay at 95 % or more (checked on full runs).
coverage=(--cov=custom_components/homeiq --cov-report=term:skip-covered)
[ $# -eq 0 ] && coverage+=(--cov-fail-under=95)
run_pytest .venv-ha tests/repo tests/patterns tests/integration -- -p no:cacheprovider "${coverage[@]}" "$@" || fail=1

# End to end: real processes on loopback ports, so without the HA test plugin (it blocks sockets).
step "pytest: end to end"
run_pytest .venv-ha tests/e2e -- -p no:cacheprovider -p no:homeassistant "$@" || fail=1

end_section
total=$((SECONDS - total_start))
printf '\n=== times (wall clock)\n'
printf '%s\n' "${sections[@]}"
printf '%-36s %4d:%02d\n' "total" $((total / 60)) $((total % 60))

if [ $fail -ne 0 ]; then echo; echo "FAILED"; exit 1; fi
echo; echo "all checks passed"
