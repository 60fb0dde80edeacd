"""``rhocast predict MODEL STRUCTURES -o OUT.h5``: predicted density coefficients (and cube files)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("predict", help="predict densities of new structures",
                              description="Writes predicted coefficients (canonical order) per structure to an "
                                          "HDF5 file: /structures/NNNNNN/{numbers, positions (Angstrom), cell, pbc, "
                                          "coefficients}, with the model's auxiliary basis in the file attributes.")
    p.add_argument("model", help="model file (HDF5), or the name of a shipped model (rhocast.pretrained_models.available())")
    p.add_argument("structures", help="structure file (anything ase.io.read reads)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--cube", metavar="DIR", help="also write a Gaussian cube file of each density into DIR")
    p.add_argument("--cube-resolution", type=float, default=0.2, help="cube grid spacing in Angstrom (default 0.2)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import time

    import h5py

    from rhocast.atomic import atomic_write
    from rhocast.parallel import my_structures, world
    from rhocast.pretrained_models import load_model
    from rhocast.progress import progress_bar
    from rhocast.properties import electron_count, write_cube
    from rhocast.structures import read_structures, validate_structure
    from rhocast.uncertainty import structure_indicators

    model = load_model(args.model)
    structures = read_structures(args.structures)
    for i, a in enumerate(structures):
        validate_structure(a, i)
    t0 = time.perf_counter()
    comm = world()  # under mpirun each rank predicts its share (dealt by atoms^2); rank 0 writes
    results = {}
    for i in progress_bar(my_structures(structures, comm), desc="predict",
                          unit="structure", show=comm.rank == 0):
        a = structures[i]
        c = model.predict(a)
        results[i] = (c, electron_count(c, model.auxbasis_, a.numbers), structure_indicators(model, a, c))
        if args.cube:
            Path(args.cube).mkdir(parents=True, exist_ok=True)
            write_cube(Path(args.cube) / f"{i:06d}.cube", a, c, model.auxbasis_, resolution=args.cube_resolution)
    results = {i: r for part in comm.gather(results) or [] for i, r in part.items()}
    if comm.rank != 0:
        return 0
    out = Path(args.output)
    indicators = []
    with atomic_write(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = "rhocast-predictions"
        f.attrs["auxbasis"] = model.auxbasis_.to_json()
        f.attrs["model"] = str(Path(args.model).resolve())
        for i, a in enumerate(structures):
            c, n_electrons, trust = results[i]
            g = f.create_group(f"structures/{i:06d}")
            g["numbers"], g["positions"], g["cell"], g["pbc"] = a.numbers, a.positions, a.cell.array, a.pbc
            g["coefficients"] = c
            g.attrs["n_electrons"] = n_electrons
            g.attrs["max_novelty"], g.attrs["most_novel_atom"] = trust.max_novelty, trust.most_novel_atom
            g.attrs["electron_count_error"] = trust.electron_count_error
            indicators.append((trust.max_novelty, i, trust.describe(a)))
    dt = time.perf_counter() - t0
    print(f"{len(structures)} predictions -> {out}  ({dt:.2f} s, {dt / max(1, len(structures)):.3f} s per structure)")
    print(_trust_summary(indicators))
    return 0


def _trust_summary(indicators: list, n_show: int = 5) -> str:
    """The structures least like the training data (rhocast.uncertainty), most novel first."""
    import numpy as np

    novelty = [x[0] for x in indicators]
    lines = [f"novelty of the most novel atom per structure (0: spanned by the training environments, 1: "
             f"unlike all of them): median {float(np.median(novelty)):.3f}, max {max(novelty):.3f}"]
    lines += [f"  structure {i}: {text}" for _, i, text in sorted(indicators, reverse=True)[:n_show]]
    return "\n".join(lines)
