#!/usr/bin/env bash
# Create or refresh .venv at the project root with the package and every extra.
# Idempotent: reinstalls only when pyproject.toml changed since the last setup.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.neuralizer-setup"
# Headless Chromium and its WebDriver for the web app's browser tests, from the system packages.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "setup: install chromium and chromium-driver (as root) for the browser tests" >&2
    fi
fi
want="$(sha256sum "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
python3 -m venv "$venv"
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
"$venv/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
"$venv/bin/pip" install -q --disable-pip-version-check -e "$root[all]"
echo "$want" > "$stamp"
