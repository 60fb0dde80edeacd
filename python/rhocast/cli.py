"""The ``rhocast`` command line.

Each sub-command lives in its own module of :mod:`rhocast.commands` and defines
``register(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import traceback
from typing import Optional, Sequence

import rhocast.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rhocast", description="Machine-learned electron densities: references, fit, predict, energies.")
    parser.add_argument("--version", action="version", version=f"rhocast {rhocast.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(rhocast.commands.__path__), key=lambda m: m.name):
        command = importlib.import_module(f"rhocast.commands.{info.name}").register(sub)
        # Also accepted after the command; SUPPRESS keeps the top-level value when it is not given there.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # SIGTERM (a batch system's kill, `kill PID`) ends a run as Ctrl-C does: workers stop, nothing is lost.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # Errors on the user's input are reported in one line; --debug shows where they came from.
        if args.debug:
            traceback.print_exc()
        print(f"rhocast {args.command}: error: {err}", file=sys.stderr)
        _end_other_ranks(1)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_other_ranks(code: int) -> None:
    """Under mpirun, an error on one rank ends all (the others would wait in a collective forever)."""
    from rhocast.parallel import world

    world().abort(code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
