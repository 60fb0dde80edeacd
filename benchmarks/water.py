"""Water monomers -> dimers: learning curve, the three error measures with the fitting floor, energy
errors of one Kohn-Sham step, time per stage (the published method's first benchmark).

References are cached in benchmarks/cache (shared with train.py).

    python benchmarks/water.py [--sizes 50 100 300 1000] [--n-sparse 500]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import plots
from rhocast.dataset import Dataset
from rhocast.accuracy import density_errors
from rhocast.kohn_sham import kohn_sham_step
from rhocast.model import DensityModel
from rhocast.references import compute_references
from rhocast.structures import read_structures
from rhocast.units import HARTREE_MEV

CACHE = Path(__file__).with_name("cache")
FIGURES = Path(__file__).with_name("figures")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 300, 1000])
    p.add_argument("--n-sparse", type=int, default=500)
    p.add_argument("-j", "--workers", type=int, default=2)
    args = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    n_mon = max(args.sizes)
    mon_path, dim_path = CACHE / f"monomers_{n_mon}", CACHE / "dimers_10"
    t = time.perf_counter()
    print(compute_references(read_structures(SHARED / "water_monomers_1k.xyz")[:n_mon], mon_path,
                             n_workers=args.workers, **SETTINGS))
    print(compute_references(SHARED / "water_dimers_10.xyz", dim_path, n_workers=args.workers, **SETTINGS))
    t_ref = time.perf_counter() - t
    mon, dim = Dataset(mon_path), Dataset(dim_path)
    pool = np.random.default_rng(0).permutation(mon.indices())
    rows, model = [], None
    for n in args.sizes:
        t = time.perf_counter()
        model = DensityModel(cutoff=4.0, max_radial=8, max_angular=6, n_sparse=args.n_sparse, zeta=2,
                             n_features=1000, solver="cg", cg_tol=1e-6).fit(mon, np.sort(pool[:n]), progress=False)
        e = density_errors(model, dim, dim.indices(), grid=True)
        rows.append([n, e.relative_l2, e.baseline_relative, float(np.mean(e.nmae)), float(np.mean(e.floor_nmae)),
                     float(np.mean([dim.floor(i)["relative_l2"] for i in range(len(dim))])), time.perf_counter() - t])
        print(rows[-1], flush=True)
    plots.learning_curve(FIGURES / "water_learning_curve.png", [r[0] for r in rows], [r[1] for r in rows], "dimer",
                         rows[0][5], title="water monomers -> dimers")
    t = time.perf_counter()
    comps = {k: [] for k in ("total", "kinetic", "electron_nuclear", "hartree", "xc", "harris_foulkes")}
    for i in range(len(dim)):
        a = dim.atoms(i)
        r = kohn_sham_step(a, model.predict(a), **{k: SETTINGS[k] for k in ("basis", "auxbasis", "xc", "grid_level")})
        e = dim.energies(i)
        for k in comps:
            value = r.harris_foulkes if k == "harris_foulkes" else r.output_energies[k]
            comps[k].append((value - e["total" if k == "harris_foulkes" else k]) * HARTREE_MEV / len(a))
    t_ks = (time.perf_counter() - t) / len(dim)
    t_scf = float(np.mean([dim.info(i)["wall_time"] for i in range(len(dim))]))
    energy = markdown_table(["component", "MAE (meV/atom)", "max (meV/atom)"],
                            [[k, float(np.mean(np.abs(v))), float(np.max(np.abs(v)))] for k, v in comps.items()])
    record("Water monomers -> dimers (learning curve, errors, energies)",
           f"PBE/def2-SVP, def2-universal-jkfit; {args.n_sparse} sparse environments, zeta 2, cutoff 4 A, 8 radial, "
           f"l <= 6, 1000 features; errors on the 10 dimers. References {t_ref:.0f} s (cached reruns are free); "
           f"one KS step {t_ks:.1f} s per dimer against {t_scf:.1f} s for its reference (SCF + fit; ratio "
           f"{t_ks / t_scf:.2f}).\n\n"
           + markdown_table(["train monomers", "rel. L2 %", "baseline-rel. %", "NMAE vs fit %", "floor NMAE %",
                             "floor rel. L2 %", "fit+eval (s)"], rows)
           + "\n\nKohn-Sham step from the largest model (output-density energy components; Harris-Foulkes total):\n\n"
           + energy + "\n\n![learning curve](figures/water_learning_curve.png)")


if __name__ == "__main__":
    main()
