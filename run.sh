#!/usr/bin/env bash
# Set-up and run. Creates .venv once (again when setup.cfg changes), installs logwatch into it, then:
#   ./run.sh test [pytest args]   ruff, mypy, then the whole test suite
#   ./run.sh [logwatch args]      the logwatch CLI, e.g. ./run.sh --log_dir sample_input_logs
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -n "$python" ] || { echo "run.sh: Python 3.11 or newer is required (set PYTHON=...)" >&2; exit 1; }

if [ ! -f .venv/.installed ] || [ setup.cfg -nt .venv/.installed ]; then
  echo "run.sh: setting up .venv (once)" >&2
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch .venv/.installed
fi

if [ "${1:-}" = "test" ]; then
  shift
  tools/ensure_chromium.sh  # the HTML report is checked in a real headless browser
  .venv/bin/ruff check .
  .venv/bin/mypy
  exec .venv/bin/pytest "$@"
fi
exec .venv/bin/python main.py "$@"
