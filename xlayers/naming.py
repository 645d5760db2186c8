"""By-name lookup shared by :mod:`activations`, :mod:`initializers`, :mod:`regularizers`
and :mod:`constraints`.

:class:`NameTable` maps names (and aliases) to objects and raises
:class:`~xlayers.errors.UnknownNameError` listing the valid names. :class:`Registry`
adds the Keras ``get`` / ``serialize`` protocol for class-based objects (initializers,
regularizers, constraints): a name, a ``{"class_name", "config"}`` dict, a class, an
instance or a callable in; ``{"module", "class_name", "config", "registered_name"}`` out.

Both hold the ``entries`` dict they are given (not a copy), so patching the module's
table (e.g. ``mock.patch.dict``) changes what the lookup finds.
"""

from __future__ import annotations

import inspect
from typing import Any, Generic, TypeVar

from .errors import ArgumentError, ArgumentTypeError, UnknownNameError

__all__ = ["NameTable", "Registry"]

T = TypeVar("T")


class NameTable(Generic[T]):
    """Names (and aliases) of one kind of object.

    Args:
        kind: The argument name used in error messages (``"activation"``...).
        entries: Name -> object; kept by reference.
    """

    def __init__(self, kind: str, entries: dict[str, T]) -> None:
        self.kind = kind
        self.entries = entries

    def names(self) -> list[str]:
        """Returns every known name, sorted."""
        return sorted(self.entries)

    def unknown(self, name: str) -> UnknownNameError:
        """Returns the error for a name that is not in the table."""
        return UnknownNameError(f"`{self.kind}` must be one of {self.names()}. Received: {self.kind}={name!r}.")

    def lookup(self, name: str) -> T:
        """Returns the entry for ``name``.

        Raises:
            UnknownNameError: ``name`` is not in the table.
        """
        entry = self.entries.get(name)
        if entry is None:
            raise self.unknown(name)
        return entry


class Registry(NameTable[type[T]]):
    """Names of the classes of one kind, resolved and serialised as Keras does.

    Args:
        kind: The argument name used in error messages (``"initializer"``...).
        keras_module: The ``"module"`` written by :meth:`serialize`.
        base: The base class; subclasses are instantiated by :meth:`get` and only its
            instances can be serialised.
        entries: Name -> class; kept by reference.
        string_defaults: Constructor arguments for names that do not mean the defaults.
    """

    def __init__(
        self,
        kind: str,
        keras_module: str,
        base: type[T],
        entries: dict[str, type[T]],
        string_defaults: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(kind, entries)
        self.keras_module = keras_module
        self.base = base
        self.string_defaults = string_defaults if string_defaults is not None else {}

    def get(self, identifier: Any) -> Any:
        """Resolves ``None`` / a name / a Keras dict / a class / an instance or callable.

        Raises:
            UnknownNameError: the name (or ``class_name``) is not in the table.
            ArgumentError: a dict without a ``class_name`` string.
            ArgumentTypeError: an identifier of an unsupported type.
        """
        kind = self.kind
        if identifier is None:
            return None
        if isinstance(identifier, str):
            return self.lookup(identifier)(**self.string_defaults.get(identifier, {}))
        if isinstance(identifier, dict):
            class_name = identifier.get("class_name")
            if not isinstance(class_name, str):
                raise ArgumentError(
                    f"`{kind}` given as a dict must have a 'class_name' string. Received: {kind}={identifier!r}."
                )
            return self.lookup(class_name).from_config(dict(identifier.get("config") or {}))  # type: ignore[attr-defined]
        if inspect.isclass(identifier) and issubclass(identifier, self.base):
            return identifier()
        if callable(identifier):
            return identifier
        base = self.base.__name__
        article = "an" if base[0].lower() in "aeiou" else "a"
        raise ArgumentTypeError(
            f"`{kind}` must be a string, a dict, {article} {base} or a callable. "
            f"Received: {kind}={identifier!r} (of type {type(identifier).__name__})."
        )

    def serialize(self, obj: Any) -> dict[str, Any] | None:
        """Returns ``{"module", "class_name", "config", "registered_name"}`` (``None`` for ``None``).

        Raises:
            ArgumentTypeError: ``obj`` resolves to a callable that is not a ``base`` instance.
        """
        if obj is None:
            return None
        resolved = self.get(obj)
        if not isinstance(resolved, self.base):
            raise ArgumentTypeError(
                f"`{self.kind}` must be an xlayers {self.base.__name__} to be serialized. "
                f"Received: {self.kind}={obj!r}."
            )
        return {
            "module": self.keras_module,
            "class_name": type(resolved).__name__,
            "config": resolved.get_config(),  # type: ignore[attr-defined]
            "registered_name": None,
        }
