"""``rhocast energies MODEL STRUCTURES -o OUT.h5``: predicted densities -> one Kohn-Sham step -> energies."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

HARTREE_MEV = 27211.386245988
KCAL_PER_HARTREE = 627.5094740631


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("energies", help="energies from predicted densities (one Kohn-Sham step)",
                              description="Predicts each structure's density, runs one Kohn-Sham "
                                          "diagonalisation with the reference's basis, functional and grid, and "
                                          "stores the energy components (Hartree). With --reference (a dataset "
                                          "holding the same structures in the same order) it prints errors.")
    p.add_argument("model")
    p.add_argument("structures", help="structure file, or a reference dataset (.h5) to use its structures")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--reference", help="reference dataset with the SCF energies of the same structures")
    p.set_defaults(func=run)
    return p


def _structures(path: str):
    from rhocast.dataset import Dataset
    from rhocast.structures import read_structures

    if path.endswith(".h5"):
        ds = Dataset(path)
        return [ds.atoms(i) for i in range(len(ds))]
    return read_structures(path)


def run(args: argparse.Namespace) -> int:
    import h5py
    import numpy as np
    from tqdm.auto import tqdm

    from rhocast import plots
    from rhocast.dataset import Dataset
    from rhocast.kohn_sham import kohn_sham_step, step_options
    from rhocast.model import DensityModel

    model = DensityModel.load(args.model)
    settings = model.reference_settings_
    structures = _structures(args.structures)
    ref = Dataset(args.reference) if args.reference else None
    if ref is not None and len(ref) != len(structures):
        raise ValueError(f"{args.reference} has {len(ref)} structures, {args.structures} has {len(structures)}")
    results = []
    for a in tqdm(structures, desc="Kohn-Sham steps", unit="structure"):
        r = kohn_sham_step(a, model.predict(a), **step_options(settings))
        results.append(r)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "rhocast-energies"
        f.attrs["settings"] = json.dumps(settings)
        for i, r in enumerate(results):
            g = f.create_group(f"structures/{i:06d}")
            for k, v in r.output_energies.items():
                g.attrs[k] = v
            g.attrs["harris_foulkes"] = r.harris_foulkes
            g.attrs["band_energy"] = r.band_energy
    os.replace(tmp, out)
    print(f"{len(results)} structures -> {out} (energies in Hartree)")
    if ref is None:
        return 0
    keys = ("total", "kinetic", "electron_nuclear", "hartree", "xc")
    err = {k: [] for k in keys + ("harris_foulkes",)}
    for i, (a, r) in enumerate(zip(structures, results)):
        if not np.allclose(ref.atoms(i).positions, a.positions, atol=1e-6):
            raise ValueError(f"structure {i} differs between {args.structures} and {args.reference}")
        e = ref.energies(i)
        for k in keys:
            err[k].append((r.output_energies[k] - e[k]) * HARTREE_MEV / len(a))
        err["harris_foulkes"].append((r.harris_foulkes - e["total"]) * HARTREE_MEV / len(a))
    print("errors against the reference SCF (meV/atom): mean absolute, max absolute")
    for k, v in err.items():
        print(f"  {k:<18} {np.mean(np.abs(v)):10.4f} {np.max(np.abs(v)):10.4f}")
    if not any(a.pbc.any() for a in structures):
        per_molecule = np.abs([(r.total_energy - ref.energies(i)["total"]) * KCAL_PER_HARTREE
                               for i, r in enumerate(results)])
        print(f"total energy MAE per molecule: {per_molecule.mean():.4f} kcal/mol "
              f"({'within' if per_molecule.mean() < 1 else 'above'} chemical accuracy, 1 kcal/mol)")
    parity = out.with_suffix(".parity.png")
    plots.parity(parity, np.array([ref.energies(i)["total"] for i in range(len(ref))]),
                 np.array([r.total_energy for r in results]), label="total energy (Hartree)")
    print(f"parity plot: {parity}")
    return 0
