"""The ``snn`` command (also ``python -m snn``).

Each area registers its own sub-commands: a module with ``register(subparsers)`` that adds
parsers whose ``func(args)`` returns a summary dict. This file prints the human summary
and, with ``--json PATH``, writes the summary atomically.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .io import atomic_write_json

# Modules that add sub-commands; a missing one (area not built yet) is skipped.
COMMAND_MODULES = ("snn.train.cli", "snn.bench_cli", "snn.export.cli", "snn.lsm.cli", "snn.continual.cli")


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


def add_json_option(p: argparse.ArgumentParser) -> None:
    """Every command takes ``--json PATH`` for a machine-readable summary."""
    p.add_argument("--json", metavar="PATH", default=None, help="also write a machine-readable summary here")


def print_summary(summary: dict, title: str | None = None) -> None:
    if title:
        print(title)
    for k, v in summary.items():
        if isinstance(v, (dict, list)) and len(str(v)) > 100:
            continue
        if isinstance(v, float):
            v = f"{v:.4g}"
        print(f"  {k}: {v}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        summary = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as e:
        if os.environ.get("SNN_DEBUG") == "1":
            raise
        print(f"snn {args.command}: error: {e}  (SNN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if summary is not None:
        print_summary(summary, title=f"snn {args.command}: summary")
        if getattr(args, "json", None):
            atomic_write_json(args.json, summary)
            print(f"  json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
