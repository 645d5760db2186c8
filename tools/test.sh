#!/usr/bin/env bash
# The README's test command: make a virtual environment, install xlayers with its test
# extras (torch 2.13.0 CPU, tensorflow-cpu as the reference), run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e ".[dev]"
# Keras 2 (tf_keras) writes the Keras 2 files the porting tests read; --no-deps: it reuses the TF
# above (its own requirement, `tensorflow`, would pull a second, GPU build of TF)
.venv/bin/python -m pip install -q --no-deps "tf_keras==2.21.0"
export TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -n 2 "$@"
