"""The ``snn`` command (also ``python -m snn``).

Each area registers its own sub-commands: a module with ``register(subparsers)`` that adds
parsers whose ``func(args)`` returns a summary dict. This file checks what can be checked before any
work (flag values through the ``type=`` validators below, output paths declared with :func:`declare_output`),
runs the command, writes ``--json PATH`` atomically, then prints the human summary.

Errors a user can cause (bad values, bad or unreadable files, unwritable places, a full disk) print one line
and exit with status 1 (argparse's own errors: 2); ``SNN_DEBUG=1`` shows the traceback. Anything else is a
bug and keeps its traceback. Output cut short by the reader (``snn ... | head -1``) does not stop the work:
the rest of the output is discarded and ``--json`` is still written.
"""
from __future__ import annotations

import argparse
import importlib
import io
import math
import os
import sys
from pathlib import Path

from .io import atomic_write_json, check_output_dir, check_output_file, existing_results

__all__ = ["main", "build_parser", "add_json_option", "declare_output", "print_summary", "given_flags",
           "positive_int", "nonnegative_int", "seed", "positive_float", "nonnegative_float", "int_list",
           "existing_file", "existing_dir", "refuse_to_overwrite"]

# Modules that add sub-commands; a missing one (area not built yet) is skipped.
COMMAND_MODULES = ("snn.train.cli", "snn.bench.cli", "snn.export.cli", "snn.lsm.cli", "snn.continual.cli",
                   "snn.hebbian.cli")
COMMAND_MODULES = ("snn.spide.cli",) + COMMAND_MODULES  # first: it registers the models `snn train` lists


# -- flag values (argparse ``type=``: a bad value is an error naming the flag, before any work) -----------------

def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None


def positive_int(text: str) -> int:
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def nonnegative_int(text: str) -> int:
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {v}")
    return v


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**32)."""
    v = _number(text, int)
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {v}")
    return v


def positive_float(text: str) -> float:
    v = _number(text, float)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def nonnegative_float(text: str) -> float:
    v = _number(text, float)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def int_list(minimum: int = 1):
    """A ``type=`` for comma (or space) separated integers, each >= ``minimum``, at least one."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.replace(",", " ").split()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one integer")
        bad = [v for v in values if v < minimum]
        if bad:
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {text!r}")
        return values

    parse.__name__ = "int_list"
    return parse


def existing_file(text: str) -> str:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text} not found")
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a regular file")
    return text


def existing_dir(text: str) -> str:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"directory {text} not found")
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return text


# -- the parser ------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn", description="Spiking neural networks: train, deploy, benchmark.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == name or name.startswith(e.name + ".")):
                continue
            raise
        mod.register(sub)
    return parser


def declare_output(p: argparse.ArgumentParser, dest: str, kind: str) -> None:
    """Say that option ``dest`` of ``p`` names an output ``kind`` ('file' or 'dir'): :func:`main` checks,
    before the command runs, that it is of that kind (or does not exist yet) and that its place is writable."""
    flag = next(a.option_strings[0] for a in p._actions if a.dest == dest)
    outputs = dict(p.get_default("_outputs") or {})
    outputs[dest] = (flag, kind)
    p.set_defaults(_outputs=outputs)


def add_json_option(p: argparse.ArgumentParser) -> None:
    """Every command takes ``--json PATH`` for a machine-readable summary."""
    p.add_argument("--json", metavar="PATH", default=None, help="also write a machine-readable summary here")
    declare_output(p, "json", "file")


def check_outputs(args) -> None:
    """Check every declared output path of the chosen command (see :func:`declare_output`)."""
    for dest, (flag, kind) in (getattr(args, "_outputs", None) or {}).items():
        (check_output_dir if kind == "dir" else check_output_file)(getattr(args, dest, None), flag)


def refuse_to_overwrite(out, names, alternative: str = "") -> None:
    """A new run must not replace the results of an earlier one: an error when directory ``out`` holds any of
    the result files ``names`` (glob patterns). ``alternative``: another way out to suggest, e.g. --resume."""
    found = existing_results(out, names)
    if found:
        raise ValueError(f"--out {out} already holds results of an earlier run ({', '.join(found)}); "
                         f"{alternative + ', ' if alternative else ''}pass --overwrite to replace them, or choose "
                         f"another --out")


def _suppress_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub._defaults.clear()
                _suppress_defaults(sub)


def given_flags(argv) -> set[str]:
    """The ``dest`` of every option given explicitly in ``argv`` (defaults do not count)."""
    parser = build_parser()
    _suppress_defaults(parser)
    return set(vars(parser.parse_args(argv)))


# -- output -----------------------------------------------------------------------------------------------------

class _ReaderMayLeave(io.TextIOBase):
    """stdout that outlives its reader: once the pipe is closed (``| head -1``), the file descriptor is pointed
    at /dev/null (as Python's documentation on SIGPIPE advises) and everything after is discarded."""

    def __init__(self, stream):
        self.stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._to_devnull()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._to_devnull()

    def _to_devnull(self) -> None:
        self.closed_by_reader = True
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding

    def __getattr__(self, name):  # anything else (buffer, reconfigure, ...) is the stream's
        return getattr(self.stream, name)


def print_summary(summary: dict, title: str | None = None) -> None:
    if title:
        print(title)
    for k, v in summary.items():
        if isinstance(v, (dict, list)) and len(str(v)) > 100:
            continue
        if isinstance(v, float):
            v = f"{v:.4g}"
        print(f"  {k}: {v}")


# -- running a command ------------------------------------------------------------------------------------------

# What a user can cause: bad values, bad files, unwritable places, a full disk.
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, RuntimeError, OSError)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args._given = given_flags(argv)
    stdout = sys.stdout
    sys.stdout = _ReaderMayLeave(stdout)
    try:
        return _run(args)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _run(args) -> int:
    try:
        check_outputs(args)
        summary = args.func(args)
        if summary is not None and getattr(args, "json", None):
            atomic_write_json(args.json, summary)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as e:
        if os.environ.get("SNN_DEBUG") == "1":
            raise
        print(f"snn {args.command}: error: {_one_line(e)}  (SNN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if summary is not None:
        print_summary(summary, title=f"snn {args.command}: summary")
        if getattr(args, "json", None):
            print(f"  json: {args.json}")
    return 0


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
