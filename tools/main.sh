#!/usr/bin/env bash
# The README's main-job command: make a virtual environment, install xlayers with the Keras
# reference (tensorflow-cpu) and ONNX tooling, run the conformance cases on CPU, report to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e ".[tf,onnx]"
export TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/xlayers conformance --device cpu --report out "$@"
