"""The ``rhocast`` command line.

Each sub-command lives in its own module of :mod:`rhocast.commands` and defines
``register(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

import rhocast.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rhocast", description="Machine-learned electron densities: references, fit, predict, energies.")
    parser.add_argument("--version", action="version", version=f"rhocast {rhocast.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(rhocast.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"rhocast.commands.{info.name}").register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # Errors on the user's input are reported in one line, not as a traceback.
        print(f"rhocast {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
