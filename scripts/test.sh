#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
"$root/.venv/bin/ruff" check src tests benchmarks scripts
"$root/.venv/bin/ruff" format --check src tests benchmarks scripts
exec "$root/.venv/bin/python" -m pytest -q "$@"
