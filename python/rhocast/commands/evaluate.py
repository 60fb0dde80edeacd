"""``rhocast evaluate MODEL REFS.h5``: density errors of a model on a reference dataset."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="error table and parity plot of a model on references")
    p.add_argument("model", help="model file (HDF5), or the name of a shipped model (rhocast.pretrained_models.available())")
    p.add_argument("references", help="reference dataset (folder from rhocast reference, or a version-1 HDF5 file)")
    p.add_argument("--grid-errors", action="store_true", help="also the real-space NMAE on a DFT grid")
    p.add_argument("--parity", default=None, help="parity plot PNG (default: REFS.parity.png)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rhocast import plots
    from rhocast.dataset import Dataset
    from rhocast.accuracy import merge_errors, predicted_errors
    from rhocast.parallel import my_structures, world
    from rhocast.pretrained_models import load_model

    comm = world()
    model = load_model(args.model)
    ds = Dataset(args.references)
    idx = ds.indices()
    trained = set(model.train_hashes_)
    held_out = np.array([i for i in idx if ds.info(int(i))["hash"] not in trained], dtype=int)
    if len(held_out) < len(idx):  # structures the model was trained on say nothing about new ones
        if comm.rank == 0:
            print(f"{len(idx) - len(held_out)} structures of {args.references} trained the model and are left out")
        idx = held_out
    if len(idx) == 0:
        raise ValueError(f"every structure of {args.references} trained {args.model}: nothing is held out")
    # Under mpirun each rank predicts and measures its share (dealt by atoms^2); rank 0 merges and reports.
    held = [ds.atoms(int(i)) for i in idx]
    shard = my_structures(held, comm)
    mine = [int(idx[k]) for k in shard]
    predicted, part = predicted_errors(model, ds, mine, args.grid_errors, [held[k] for k in shard])
    parts = comm.gather((mine, predicted, part))
    if comm.rank != 0:
        return 0
    err, predictions = merge_errors(parts, [int(i) for i in idx])
    floor = float(np.mean([ds.floor(int(i))["relative_l2"] for i in idx]))
    print(f"{args.model} on {args.references}:\n{err.table()}\n  fitting floor (L2)   : {floor:.4f} %")
    per = err.per_structure_relative_l2
    print(f"  per structure        : median {np.median(per):.4f} %, max {per.max():.4f} % "
          f"(structure {int(idx[int(np.argmax(per))])})")
    parity = args.parity or str(Path(args.references).with_suffix(".parity.png"))
    plots.coefficient_parity(parity, held, [ds.coefficients(int(i)) for i in idx],
                             predictions, model.auxbasis_)
    print(f"  parity plot          : {parity}")
    return 0
