"""One registry type for everything a name can stand for: spaces, agents, evaluators, models,
datasets, controllers, rewards and executors.

An entry is a ``"module:attr"`` path, imported on first use (so listing agents or starting the
CLI imports neither torch nor the agents), or the object itself. ``create`` checks keyword
options against the target's signature, so a misspelt option is a :class:`ConfigError` that
names it and the accepted ones, never a ``TypeError`` from deep inside a constructor.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from rlnas.errors import ConfigError

T = TypeVar("T")

PLUGGABLE = ("space", "agent", "evaluator")
"""Kinds a user adds with a plugin (:mod:`rlnas.plugins`)."""


class Registry(Generic[T]):
    """Names of one ``kind`` (e.g. ``"agent"``) mapped to lazily imported objects."""

    def __init__(self, kind: str, entries: Mapping[str, str | T] | None = None):
        self.kind = kind
        self._entries: dict[str, str | T] = dict(entries or {})
        self._builtin = frozenset(self._entries)
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str | T) -> None:
        """Add ``name``, or replace one registered earlier (not a built-in one: a stored study made with
        the built-in would go on with another's code); ``target`` is a ``"module:attr"`` path or the object."""
        if not isinstance(name, str) or not name:
            article = "an" if self.kind[:1] in ("a", "e", "i", "o", "u") else "a"
            raise ConfigError(f"{article} {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._builtin:
            raise ConfigError(f"{self.kind} {name!r} is built into rlnas and cannot be replaced; register yours "
                              "under another name")
        if isinstance(target, str) and ":" not in target:
            raise ConfigError(f"{self.kind} {name!r}: expected a 'module:attr' path, got {target!r}")
        if not isinstance(target, str) and not callable(target):
            raise ConfigError(f"{self.kind} {name!r}: expected a class, a function or a 'module:attr' path, got "
                              f"{type(target).__name__} {target!r:.80}")
        self._entries[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (nothing happens when it is not registered; a built-in name stays)."""
        if name in self._builtin:
            raise ConfigError(f"{self.kind} {name!r} is built into rlnas and cannot be removed")
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def list(self) -> list[str]:
        """The registered names, sorted (installed plugins' only once loaded: :func:`rlnas.plugins.load_plugins`)."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._find_plugins(name)
        return name in self._entries

    def _find_plugins(self, name: object) -> None:
        """Where a space, agent or evaluator is not registered: load the installed packages' plugins
        (:mod:`rlnas.plugins`), once, on this first need: scanning the installed packages takes tens of
        milliseconds that a command that needs none should not pay."""
        if self.kind in PLUGGABLE and name not in self._entries:
            from rlnas.plugins import load_plugins

            load_plugins()

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> T:
        """The object registered as ``name``, imported on first use."""
        self._find_plugins(name)
        if name not in self._entries:
            hint = "; your own are registered by a plugin: docs/extending.md" if self.kind in PLUGGABLE else ""
            raise ConfigError(f"unknown {self.kind} {name!r} (choices: {', '.join(self.list())}){hint}")
        if name not in self._loaded:
            target = self._entries[name]
            if isinstance(target, str):
                module, _, attr = target.partition(":")
                try:
                    target = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as exc:  # a typo in the path, a module missing here
                    raise ConfigError(f"{self.kind} {name!r} is registered as {self._entries[name]!r}, which "
                                      f"cannot be imported: {type(exc).__name__}: {exc}") from None
            self._loaded[name] = target  # type: ignore[assignment]
        return self._loaded[name]

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the object registered as ``name`` with ``args`` and keyword ``options``.

        Options the callable does not accept, and values that do not fit the type a parameter
        declares, are a :class:`ConfigError` naming them.
        """
        from rlnas.checks import check_option_types

        factory = self.get(name)
        what = f"{self.kind} {name!r}"
        if not callable(factory):  # a 'module:attr' path to something else
            raise ConfigError(f"{what} is registered as {self._entries[name]!r}, which is "
                              f"{type(factory).__name__} {factory!r:.80}, not a class or a function")
        check_options(what, factory, options, skip=len(args))  # type: ignore[arg-type]
        return factory(*args, **check_option_types(factory, options, what))  # type: ignore[operator, arg-type]


def accepted_options(factory: Callable[..., Any], skip: int = 0) -> list[str] | None:
    """Keyword names ``factory`` accepts after its first ``skip`` positional ones (``None``: any)."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    taken = 0
    names = []
    for p in named:
        if p.kind in positional and taken < skip:
            taken += 1
            continue
        if p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            names.append(p.name)
    return names


def check_options(what: str, factory: Callable[..., Any], options: Mapping[str, Any], skip: int = 0) -> None:
    """Raise :class:`ConfigError` when ``options`` holds a keyword ``factory`` does not accept, or
    lacks one it requires (after its first ``skip`` positional arguments)."""
    accepted = accepted_options(factory, skip)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(f"{what}: unknown option(s) {', '.join(unknown)} "
                              f"(accepted: {', '.join(accepted) or 'none'})")
    missing = [name for name in _required(factory, skip) if name not in options]
    if missing:
        raise ConfigError(f"{what}: missing option(s) {', '.join(missing)}")


def _required(factory: Callable[..., Any], skip: int) -> list[str]:
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = [p for p in parameters if p.kind in kinds]
    positional = [p for p in named if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    given = {p.name for p in positional[:skip]}
    return [p.name for p in named if p.default is inspect.Parameter.empty and p.name not in given]


__all__ = ["Registry", "accepted_options", "check_options"]
