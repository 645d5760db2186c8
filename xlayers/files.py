"""Atomic file writes: a temporary file in the target's directory, renamed into place.

``tempfile.mkstemp`` creates its file with mode 0600; :func:`publish` gives it the mode a plain
``open`` would have (0666 less the process's umask) before the rename, so a report or an exported
model is readable as any other file the user writes.
"""

from __future__ import annotations

import os

__all__ = ["publish"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(temporary: str | os.PathLike, target: str | os.PathLike) -> None:
    """Give ``temporary`` the default file mode and rename it onto ``target`` (atomic on POSIX)."""
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, target)
