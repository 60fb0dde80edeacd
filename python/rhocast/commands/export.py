"""``rhocast export MODEL OUT.rcm``: the model as the binary file that C and C++ hosts read."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write a model for C/C++ hosts (rhocast::load_model, rhocast.h)")
    p.add_argument("model", help="model file (HDF5), or the name of a shipped model (rhocast.pretrained_models.available())")
    p.add_argument("output", help="exported model file (format: cpp/include/rhocast/model_file.hpp)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from rhocast.pretrained_models import load_model

    load_model(args.model).export(args.output)
    print(f"wrote {args.output}")
    return 0
