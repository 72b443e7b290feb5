#!/usr/bin/env bash
# Set up .venv (if needed) and run the demo on embedded data. Outputs go to ./demo-output.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/neuralizer" demo -o "${1:-demo-output}"
