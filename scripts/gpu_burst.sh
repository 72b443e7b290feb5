#!/usr/bin/env bash
# Resume a training run from a burst bundle for MINUTES minutes, on the GPU when there is one,
# with data workers on every core; then write the run's files into OUT (new or empty).
#
#   scripts/gpu_burst.sh BUNDLE MINUTES OUT      (BUNDLE: made by scripts/make_burst_bundle.py)
#
# Needs Python 3 with PyTorch, numpy, scipy, einops, safetensors and tqdm; no network. Wheels in
# BUNDLE/wheels are installed into a scratch folder first (pip --no-index). PYTHON names the
# interpreter (default python3). See scripts/gpu_burst.py for how the run is stopped.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 BUNDLE MINUTES OUT [--workers N] [--grace SECONDS]" >&2
    exit 2
fi
python="${PYTHON:-python3}"
bundle="$1"
if [ ! -f "$bundle/burst.json" ]; then
    echo "error: $bundle is not a burst bundle (no burst.json): make one with" \
        "scripts/make_burst_bundle.py" >&2
    exit 2
fi
site="$(mktemp -d "${TMPDIR:-/tmp}/burst-site.XXXXXX")"
trap 'rm -rf "$site"' EXIT
shopt -s nullglob
wheels=("$bundle"/wheels/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "${wheels[@]}"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$bundle/src${PYTHONPATH:+:$PYTHONPATH}"
"$python" "$bundle/scripts/gpu_burst.py" "$@"
