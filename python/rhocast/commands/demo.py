"""``rhocast demo``: the whole pipeline on a small example it builds itself."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="run the whole pipeline on a small built-in example (a few minutes)",
        description="Builds distorted water molecules, computes PBE/def2-SVP references, fits a density "
                    "model (learning curve), predicts held-out densities, runs one Kohn-Sham step and an "
                    "SCF from the predicted guess, and writes a summary and plots.")
    p.add_argument("-o", "--output", default="rhocast-demo", help="folder for its files (default: rhocast-demo)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from rhocast.demo import run_demo

    run_demo(args.output)
    return 0
