"""Plugins: a user's own spaces, agents and evaluators, registered before the ``rlnas`` command runs.

A plugin is a module that calls :func:`rlnas.spaces.register_space`,
:func:`rlnas.agents.register_agent` or :func:`rlnas.evaluators.register_evaluator` when it is
imported (or a callable that does, called with no argument). The command loads

* the modules named in the environment variable ``RLNAS_PLUGINS`` (comma-separated, importable
  from the working directory or ``PYTHONPATH``), and
* the entry points of the group ``rlnas.plugins`` of installed packages (when a registry does not find a
  name, or a command lists them), e.g. in a plugin package's ``pyproject.toml``:
  ``[project.entry-points."rlnas.plugins"] mine = "mine.rlnas_plugin"``,

so ``rlnas search --agent greedy`` and ``rlnas resume`` of a study made with it both work.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from traceback import walk_tb
from types import TracebackType

from rlnas.errors import ConfigError, first_line

ENVIRONMENT = "RLNAS_PLUGINS"
ENTRY_POINT_GROUP = "rlnas.plugins"

_loaded: set[str] = set()


_scanned = False


def load_plugins(*, installed: bool = True) -> list[str]:
    """Load every plugin not loaded yet (see the module docstring); return the names loaded now. With
    ``installed=False`` only those ``RLNAS_PLUGINS`` names; the installed packages' entry points are read
    once per process (a registry reads them on its first miss: the scan takes tens of milliseconds).

    A plugin that cannot be imported or fails while registering is a one-line :class:`ConfigError`
    naming it.
    """
    from importlib.metadata import entry_points

    global _scanned
    loaded = []
    names = [n.strip() for n in os.environ.get(ENVIRONMENT, "").split(",") if n.strip()]
    if names and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a plugin module next to the user's files (last: it shadows nothing)
    for name in names:
        if name not in _loaded:
            _run(name, lambda name=name: importlib.import_module(name), f"{ENVIRONMENT} names {name!r}", repr(name))
            loaded.append(name)
    if not installed or _scanned:
        return loaded
    _scanned = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        label = f"entry point {point.name!r} ({point.value})"
        if label not in _loaded:
            _run(label, point.load, f"the {ENTRY_POINT_GROUP} {label}", label)
            loaded.append(label)
    return loaded


def _run(label: str, load: object, what: str, shown: str) -> None:
    try:
        target = load()  # type: ignore[operator]
        if callable(target) and not isinstance(target, type(sys)):
            target()
    except ConfigError as exc:
        raise ConfigError(f"plugin: {what}: {first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a user's module is said in one line
        raise ConfigError(f"plugin: {what}, which failed: {type(exc).__name__}: {first_line(exc)}") from None
    _loaded.add(label)
    module = target if isinstance(target, type(sys)) else inspect.getmodule(target)
    for path in _code_paths(module):
        _sources[path] = shown


def _code_paths(module: object) -> list[str]:
    """Where a plugin's code lives: the folder(s) of the package its module belongs to (``mine`` for
    ``mine.rlnas_plugin``, whose agent may live in ``mine/agents.py``), or the module's own file."""
    parts = getattr(module, "__name__", "").split(".")
    for end in range(1, len(parts)):  # the topmost regular package: a namespace (google.*) is not one plugin's
        package = sys.modules.get(".".join(parts[:end]))
        if parts[0] != "rlnas" and getattr(package, "__file__", None) and getattr(package, "__path__", None):
            return [os.path.realpath(folder) for folder in package.__path__]  # type: ignore[union-attr]
    source = getattr(module, "__file__", None)
    if not source:
        return []
    return [os.path.realpath(os.path.dirname(source) if os.path.basename(source) == "__init__.py" else source)]


_sources: dict[str, str] = {}
"""The files and folders of the plugins loaded, and the plugin each belongs to (as messages name it)."""


def plugin_frame(traceback: TracebackType | None) -> tuple[str, str, int] | None:
    """Where in a plugin's code an exception was raised: the plugin, the file and the line of the innermost
    frame of the traceback that is a loaded plugin's code; ``None`` when none is."""
    found = None
    for frame, line in walk_tb(traceback):
        path = os.path.realpath(frame.f_code.co_filename)
        for source, label in _sources.items():
            if path == source or path.startswith(source + os.sep):
                found = label, frame.f_code.co_filename, line
    return found


__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT", "load_plugins", "plugin_frame"]
