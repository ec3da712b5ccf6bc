"""The body of the ``rlnas`` command (see :mod:`rlnas.cli`): parse, run one command, turn errors into one line."""
from __future__ import annotations

import errno
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rlnas.cli._common import EXIT_FAILED, EXIT_USAGE, CommandFailed, Parser, make_console, printable
from rlnas.errors import RlnasError, StorageError, first_line
from rlnas.files import is_text
from rlnas.plugins import load_plugins

COMMAND_MODULES = ("search", "resume", "retrain", "ls", "show", "best", "compare", "plot", "report", "export", "rm",
                   "rename", "agents", "spaces", "query", "rule")
"""Modules of :mod:`rlnas.cli` that each add one command, in ``--help`` order."""

OUTPUT_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
"""Errors of a write that the output's disk or device refused (``> /dev/full``, a full disk, a quota): one
line, not a traceback. Files the commands write themselves report their own failures."""


def build_parser() -> Parser:
    """The argument parser of the ``rlnas`` command."""
    from rlnas import __version__

    parser = Parser(prog="rlnas", description="Neural architecture search with reinforcement learning.")
    parser.add_argument("--version", action="version", version=f"rlnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMAND_MODULES:
        importlib.import_module(f"rlnas.cli.{module}").add_parser(commands)
    return parser


def run_command(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None:  # started with standard output closed (`>&-`): say so before doing any work
        if sys.stderr is not None:
            sys.stderr.write("rlnas: error: standard output is closed; redirect it to a file or /dev/null\n")
        return EXIT_FAILED
    _replace_what_output_cannot_encode()
    undecodable = next((arg for arg in arguments if not is_text(arg)), None)
    if undecodable is not None:  # bytes the locale could not decode (Python keeps them as surrogates)
        sys.stderr.write(f"rlnas: error: argument {ascii(undecodable)} is not text in this locale's encoding "
                         f"({sys.getfilesystemencoding()}); use a UTF-8 locale (e.g. LANG=C.UTF-8)\n")
        return EXIT_USAGE
    try:
        load_plugins(installed=False)  # the modules the user named (installed packages' when first needed)
    except RlnasError as exc:
        sys.stderr.write(f"rlnas: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    args, unknown = build_parser().parse_known_args(arguments)
    if unknown:  # said by the command's own parser: it names the command's --help, not rlnas's
        sys.stderr.write(f"rlnas: error: unrecognized arguments: {' '.join(unknown)} "
                         f"(see rlnas {args.command} --help)\n")
        return EXIT_USAGE
    warnings.showwarning = _warn_on_one_line
    console = make_console(stderr=getattr(args, "stderr_console", False))
    try:
        code = args.run(args, console)
        sys.stdout.flush()  # here, where a failure is reported, not at exit
        return code
    except CommandFailed as exc:
        sys.stderr.write(f"rlnas: error: {_one_line(exc)}\n")
        return EXIT_FAILED
    except (RlnasError, StorageError) as exc:
        sys.stderr.write(f"rlnas: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except OSError as exc:
        if _said_plugin_failed(exc):  # a plugin's own I/O error (EIO, a broken pipe of its own) is not the output's
            return EXIT_FAILED
        if isinstance(exc, BrokenPipeError):  # the reader of the output went away (| head): stop quietly
            _silence_stdout()
            return EXIT_FAILED
        if exc.errno not in OUTPUT_FULL:
            raise
        _silence_stdout()  # what is still buffered cannot be written either
        sys.stderr.write(f"rlnas: error: cannot write the output: {exc.strerror}\n")
        return EXIT_FAILED
    except Exception as exc:
        if _said_plugin_failed(exc):
            return EXIT_FAILED
        raise  # an unexpected error of rlnas itself: its traceback is what a bug report needs


def _said_plugin_failed(exc: Exception) -> bool:
    """Say in one line, naming the plugin and the line, an error that a plugin's own code raised (its agent's
    ``ask``, its evaluator's constructor); whether it was one."""
    from rlnas.plugins import plugin_frame

    where = plugin_frame(exc.__traceback__)
    if where is None:
        return False
    plugin, path, line = where
    sys.stderr.write(f"rlnas: error: plugin {printable(plugin)} raised {type(exc).__name__}: {_one_line(exc)} "
                     f"({printable(path)}, line {line})\n")
    return True


def _replace_what_output_cannot_encode() -> None:
    """Under a locale whose encoding lacks some characters (``LANG=C``: ASCII), print ``?`` for them
    (``…``, ``±``, a study's name) instead of failing with a ``UnicodeEncodeError``."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if encoding != "utf8" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")


def _silence_stdout() -> None:
    """Point standard output at the null device, so that flushing it at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests capture it)
        pass
    finally:
        os.close(devnull)


def _warn_on_one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Library warnings (e.g. an unreadable checkpoint skipped on resume) as ``rlnas: warning: ...``."""
    sys.stderr.write(f"rlnas: warning: {printable(str(message).strip().splitlines()[0])}\n")


def _one_line(exc: Exception) -> str:
    return printable(first_line(exc))
