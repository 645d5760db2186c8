"""The benchmark: xlayers against native torch, Keras on torch and Keras on TF (``xlayers bench``).

The code is ``xlayers/bench.py`` (shared with the command line); see its docstring for the cases, the
candidates and what is timed.

Usage: python tools/bench.py [--cases PATTERN] [--candidates LIST] [--device cpu|cuda] [--threads N]
                             [--out DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xlayers.bench import main

if __name__ == "__main__":
    sys.exit(main())
