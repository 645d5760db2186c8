#!/usr/bin/env bash
# The README's test command: make a virtual environment, install xlayers with its test
# extras (torch 2.13.0 CPU, tensorflow-cpu as the reference), run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -e ".[dev]"
export TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -n 2 "$@"
