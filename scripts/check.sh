#!/usr/bin/env bash
# The project's one check: formatting, lint, types, tests. CI (.ci/run) and developers run this.
# Uses the virtualenv in .venv (made by the README's setup command) unless PYTHON says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
echo "== ruff format --check"; "$PY" -m ruff format --check analyzer tests bench samples tools scripts fuzz
echo "== ruff check";          "$PY" -m ruff check analyzer tests bench samples tools scripts fuzz
echo "== mypy --strict (package)"; "$PY" -m mypy
echo "== pytest";              "$PY" -m pytest -q "$@"
