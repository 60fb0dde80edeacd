"""Training cost and accuracy: water monomers -> held-out monomers and the 10 water dimers.

References (PBE/def2-SVP, def2-universal-jkfit, Coulomb fit) are cached resumably in benchmarks/cache.
For each number of sparse environments: fit time by stage, CG iterations, peak memory, validation
errors (relative L2, baseline-relative, fitting floor) and the prediction time next to the SCF time.

    python benchmarks/train.py [--n-monomers 1000] [--sparse 100 1000] [--solver cg]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast.dataset import Dataset
from rhocast.errors import density_errors
from rhocast.model import DensityModel
from rhocast.references import compute_references
from rhocast.structures import read_structures

CACHE = Path(__file__).with_name("cache")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-monomers", type=int, default=1000)
    p.add_argument("--sparse", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--n-features", type=int, default=1000)
    p.add_argument("--solver", default="cg")
    p.add_argument("-j", "--workers", type=int, default=2)
    args = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    monomers = read_structures(SHARED / "water_monomers_1k.xyz")[: args.n_monomers]
    mon_path, dim_path = CACHE / f"monomers_{args.n_monomers}.h5", CACHE / "dimers_10.h5"
    print(compute_references(monomers, mon_path, n_workers=args.workers, **SETTINGS))
    print(compute_references(SHARED / "water_dimers_10.xyz", dim_path, n_workers=args.workers, **SETTINGS))
    mon, dim = Dataset(mon_path), Dataset(dim_path)
    train, val, _ = mon.split(seed=0, fractions=(0.9, 0.1, 0.0))
    scf_time = np.mean([mon.info(int(i))["wall_time"] for i in val])
    floor_val = np.mean([mon.floor(int(i))["relative_l2"] for i in val])
    floor_dim = np.mean([dim.floor(i)["relative_l2"] for i in range(len(dim))])
    rows, stages = [], []
    for m in args.sparse:
        model = DensityModel(cutoff=4.0, max_radial=8, max_angular=6, n_sparse=m, zeta=2,
                             n_features=args.n_features, solver=args.solver, cg_tol=1e-6, max_iter=3000)
        t = time.perf_counter()
        model.fit(mon, train)
        fit_time = time.perf_counter() - t
        ev, ed = density_errors(model, mon, val), density_errors(model, dim, dim.indices())
        t = time.perf_counter()
        for i in val:
            model.predict(mon.atoms(int(i)))
        predict_time = (time.perf_counter() - t) / len(val)
        r = model.fit_report_
        rows.append([m, len(train), r["n_weights"], fit_time, r["cg_iterations"], r["peak_memory_mb"],
                     ev.relative_l2, ev.baseline_relative, float(floor_val), ed.relative_l2, ed.baseline_relative,
                     float(floor_dim), 1e3 * predict_time, float(scf_time / predict_time)])
        stages.append([m] + [f"{k}: {v:.1f}" for k, v in r["times_s"].items()])
        print(rows[-1], flush=True)
    table = markdown_table(["sparse env.", "train", "weights", "fit (s)", "CG iter.", "peak MB",
                            "val rel. L2 %", "val baseline-rel. %", "val floor %", "dimers rel. L2 %",
                            "dimers baseline-rel. %", "dimers floor %", "predict ms/structure", "SCF/predict"], rows)
    stage_lines = "\n".join("- " + str(s[0]) + " sparse: " + "; ".join(s[1:]) + " (s)" for s in stages)
    record("Training: water monomers -> monomers and dimers",
           f"PBE/def2-SVP references, def2-universal-jkfit (Coulomb fit), overlap-metric loss, zeta 2, cutoff 4 A, "
           f"8 radial, l <= 6, {args.n_features} selected features, solver {args.solver}. SCF time per monomer "
           f"{scf_time:.2f} s.\n\n{table}\n\nTime by stage:\n{stage_lines}")


if __name__ == "__main__":
    main()
