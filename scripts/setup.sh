#!/usr/bin/env bash
# Set up a virtual environment in .venv with the core, the local provider and the test tools.
# Idempotent: re-running it only installs what is missing. Works offline from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU build of torch 2.13 first, so nothing below pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
pip install -q -c scripts/constraints.txt -e ".[test,dev,tfrecord,storage]" -e plugins/local -e examples/centroid-provider scikit-learn
# Real bundled data for `mcv demo` (Debian's Fashion-MNIST); the demo falls back to scikit-learn's digits.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = "0" ] \
    && command -v apt-get >/dev/null; then
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
        || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
        || echo "note: dataset-fashion-mnist not installed; mcv demo will use scikit-learn's digits" >&2
fi
