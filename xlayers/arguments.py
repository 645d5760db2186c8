"""Keras argument checks shared by every layer family: one spelling of each rule and message.

Each raises a bare message in the project's grammar (the layer adds its label).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .errors import ArgumentError

__all__ = ["DATA_FORMATS", "check_positive_int", "data_format", "integer"]

DATA_FORMATS = ("channels_last", "channels_first")


def integer(value: Any) -> int | None:
    """``value`` as an int if it is an integer (numpy integers too; bools are not), else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_positive_int(argument: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (numpy integers too, as Keras takes them),
    else an :class:`ArgumentError`."""
    number = integer(value)
    if number is None or number <= 0:
        raise ArgumentError(f"`{argument}` must be a positive integer. Received: {argument}={value!r}.")
    return number


def data_format(value: Any) -> str:
    """Keras's ``data_format``: ``None`` is ``"channels_last"`` (Keras's default image data format)."""
    name = "channels_last" if value is None else str(value).lower()
    if name not in DATA_FORMATS:
        raise ArgumentError(f"`data_format` must be one of {list(DATA_FORMATS)}. Received: data_format={value!r}.")
    return name
