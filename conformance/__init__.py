"""Conformance of xlayers against real Keras (TF backend): references, tolerances, checks."""
