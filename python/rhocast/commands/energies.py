"""``rhocast energies MODEL STRUCTURES -o OUT.h5``: predicted densities -> one Kohn-Sham step -> energies."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("energies", help="energies from predicted densities (one Kohn-Sham step)",
                              description="Predicts each structure's density, runs one Kohn-Sham "
                                          "diagonalisation with the reference's basis, functional and grid, and "
                                          "stores the energy components (Hartree). With --reference (a dataset "
                                          "holding the same structures in the same order) it prints errors.")
    p.add_argument("model", help="model file (HDF5), or the name of a shipped model (rhocast.pretrained_models.available())")
    p.add_argument("structures", help="structure file, or a reference dataset (folder, or a version-1 .h5 file) to use its structures")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--reference", help="reference dataset with the SCF energies of the same structures")
    p.set_defaults(func=run)
    return p


def _structures(path: str):
    from rhocast.dataset import Dataset
    from rhocast.structures import read_structures

    if Path(path).is_dir() or path.endswith(".h5"):  # a reference dataset (folder, or a version-1 file)
        ds = Dataset(path)
        return [ds.atoms(i) for i in range(len(ds))]
    return read_structures(path)


def run(args: argparse.Namespace) -> int:
    import h5py
    import numpy as np

    from rhocast import plots
    from rhocast.atomic import atomic_write
    from rhocast.progress import progress_bar
    from rhocast.dataset import Dataset
    from rhocast.kohn_sham import kohn_sham_step, step_options
    from rhocast.pretrained_models import load_model
    from rhocast.uncertainty import step_energy_change, structure_indicators
    from rhocast.units import HARTREE_KCAL_MOL, HARTREE_MEV

    model = load_model(args.model)
    settings = model.reference_settings_
    structures = _structures(args.structures)
    ref = Dataset(args.reference) if args.reference else None
    options = step_options(settings, ref.settings if ref is not None else None)
    if ref is not None:
        _check_same_structures(structures, ref, args.structures, args.reference)
        if options.get("grid_level") != settings.get("grid_level"):
            print(f"grid level {options['grid_level']}, that of {args.reference} (the model's training data "
                  f"used {settings.get('grid_level')})")
    results, trust = [], []
    for a in progress_bar(structures, desc="Kohn-Sham steps", unit="structure"):
        c = model.predict(a)
        trust.append(structure_indicators(model, a, c))
        results.append(kohn_sham_step(a, c, **options))
    out = Path(args.output)
    with atomic_write(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = "rhocast-energies"
        f.attrs["settings"] = json.dumps(settings)
        for i, (r, t) in enumerate(zip(results, trust)):
            g = f.create_group(f"structures/{i:06d}")
            for k, v in r.output_energies.items():
                g.attrs[k] = v
            g.attrs["harris_foulkes"] = r.harris_foulkes
            g.attrs["band_energy"] = r.band_energy
            g.attrs["max_novelty"], g.attrs["electron_count_error"] = t.max_novelty, t.electron_count_error
            g.attrs["step_energy_change"] = step_energy_change(r)  # Hartree
    print(f"{len(results)} structures -> {out} (energies in Hartree)")
    worst = int(np.argmax([t.max_novelty for t in trust]))
    print(f"least like the training data: structure {worst}, {trust[worst].describe(structures[worst])}")
    change = np.array([step_energy_change(r) for r in results]) * HARTREE_KCAL_MOL
    k = int(np.argmax(change))
    print(f"least self-consistent: structure {k}, |E(output density) - E(Harris-Foulkes)| = {change[k]:.2f} kcal/mol "
          f"(median {np.median(change):.2f}; large values go with large energy errors)")
    if ref is None:
        return 0
    keys = ("total", "kinetic", "electron_nuclear", "hartree", "xc")
    err = {k: [] for k in keys + ("harris_foulkes",)}
    for i, (a, r) in enumerate(zip(structures, results)):
        e = ref.energies(i)
        for k in keys:
            err[k].append((r.output_energies[k] - e[k]) * HARTREE_MEV / len(a))
        err["harris_foulkes"].append((r.harris_foulkes - e["total"]) * HARTREE_MEV / len(a))
    print("errors against the reference SCF (meV/atom): mean absolute, max absolute")
    for k, v in err.items():
        print(f"  {k:<18} {np.mean(np.abs(v)):10.4f} {np.max(np.abs(v)):10.4f}")
    periodic = any(a.pbc.any() for a in structures)
    if not periodic:
        per_molecule = np.abs([(r.total_energy - ref.energies(i)["total"]) * HARTREE_KCAL_MOL
                               for i, r in enumerate(results)])
        print(f"total energy MAE per molecule: {per_molecule.mean():.4f} kcal/mol "
              f"({'within' if per_molecule.mean() < 1 else 'above'} chemical accuracy, 1 kcal/mol)")
    histogram = out.with_suffix(".errors.png")
    scale, unit = (HARTREE_MEV, "meV/atom") if periodic else (HARTREE_KCAL_MOL, "kcal/mol")
    per = (lambda i, e: e * scale / len(structures[i])) if periodic else (lambda i, e: e * scale)
    plots.energy_error_histogram(
        histogram, {"one Kohn-Sham step": [per(i, r.total_energy - ref.energies(i)["total"])
                                           for i, r in enumerate(results)],
                    "Harris-Foulkes": [per(i, r.harris_foulkes - ref.energies(i)["total"])
                                       for i, r in enumerate(results)]},
        unit, threshold=None if periodic else 1.0, title=f"total-energy errors, {len(results)} structures")
    print(f"error histogram: {histogram}")
    return 0


def _check_same_structures(structures, ref, structures_name: str, reference_name: str) -> None:
    """Raise before any work when ``ref`` does not hold the same structures in the same order."""
    import numpy as np

    if len(ref) != len(structures):
        raise ValueError(f"{reference_name} has {len(ref)} structures, {structures_name} has {len(structures)}")
    for i, a in enumerate(structures):
        b = ref.atoms(i)
        if len(a) != len(b) or np.any(a.numbers != b.numbers) or not np.allclose(a.positions, b.positions, atol=1e-6):
            raise ValueError(f"structure {i} of {structures_name} ({a.get_chemical_formula()}) is not structure {i} "
                             f"of {reference_name} ({b.get_chemical_formula()}): --reference needs the same "
                             "structures in the same order")
