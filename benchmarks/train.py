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
from rhocast.accuracy import density_errors
from rhocast.memory import PeakRSS
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
    p.add_argument("--qm9", type=int, default=0, metavar="N",
                   help="train on N QM9 molecules (at most 6 heavy atoms, PBE/def2-SVP at grid level 1; references "
                        "shared with scf_guess.py and qm9.py) instead of the water monomers; the dimer columns stay empty")
    args = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    if args.qm9:
        qm9_benchmark(args)
        return
    monomers = read_structures(SHARED / "water_monomers_1k.xyz")[: args.n_monomers]
    mon_path, dim_path = CACHE / f"monomers_{args.n_monomers}", CACHE / "dimers_10"
    print(compute_references(monomers, mon_path, n_workers=args.workers, **SETTINGS))
    print(compute_references(SHARED / "water_dimers_10.xyz", dim_path, n_workers=args.workers, **SETTINGS))
    mon, dim = Dataset(mon_path), Dataset(dim_path)
    train, val, _ = mon.split(seed=0, fractions=(0.9, 0.1, 0.0))
    scf_time = scf_seconds(mon, val[:3])
    floor_val = np.mean([mon.floor(int(i))["relative_l2"] for i in val])
    floor_dim = np.mean([dim.floor(i)["relative_l2"] for i in range(len(dim))])
    rows, stages = fit_rows(args, mon, train, val, dim, floor_val, floor_dim, scf_time)
    table = markdown_table(COLUMNS, rows)
    stage_lines = "\n".join("- " + str(s[0]) + " sparse: " + "; ".join(s[1:]) + " (s)" for s in stages)
    record("Training: water monomers -> monomers and dimers",
           f"PBE/def2-SVP references, def2-universal-jkfit (Coulomb fit), overlap-metric loss, zeta 2, cutoff 4 A, "
           f"8 radial, l <= 6, {args.n_features} selected features, solver {args.solver}. SCF time per monomer "
           f"{scf_time:.2f} s.\n\n{table}\n\nTime by stage:\n{stage_lines}")


def scf_seconds(ds, indices) -> float:
    """Mean wall time (s) of the SCF alone, run here with the threads the predictions get: the stored
    reference times come from worker processes with other thread counts."""
    from rhocast.references import ReferenceSettings, run_scf

    settings = ReferenceSettings(**ds.settings).resolved()
    times = []
    for i in indices:
        t = time.perf_counter()
        run_scf(ds.atoms(int(i)), settings)
        times.append(time.perf_counter() - t)
    return float(np.mean(times))


COLUMNS = ["sparse env.", "train", "weights", "fit (s)", "CG iter.", "peak RSS of the fit (MB)", "val rel. L2 %",
           "val baseline-rel. %", "val floor %", "dimers rel. L2 %", "dimers baseline-rel. %", "dimers floor %",
           "predict ms/structure", "SCF/predict"]


def fit_rows(args, ds, train, val, dim, floor_val, floor_dim, scf_time):
    """One table row and one line of stage times per number of sparse environments."""
    rows, stages = [], []
    for m in args.sparse:
        model = DensityModel(cutoff=4.0, max_radial=8, max_angular=6, n_sparse=m, zeta=2,
                             n_features=args.n_features, solver=args.solver, cg_tol=1e-6, max_iter=3000)
        t = time.perf_counter()
        with PeakRSS() as peak:
            model.fit(ds, train)
        fit_time = time.perf_counter() - t
        ev = density_errors(model, ds, val)
        ed = density_errors(model, dim, dim.indices()) if dim is not None else None
        t = time.perf_counter()
        for i in val:
            model.predict(ds.atoms(int(i)))
        predict_time = (time.perf_counter() - t) / len(val)
        r = model.fit_report_
        rows.append([m, len(train), r["n_weights"], fit_time, r["cg_iterations"], peak.mb,
                     ev.relative_l2, ev.baseline_relative, float(floor_val),
                     ed.relative_l2 if ed else "-", ed.baseline_relative if ed else "-", floor_dim,
                     1e3 * predict_time, float(scf_time / predict_time)])
        stages.append([m] + [f"{k}: {v:.1f}" for k, v in r["times_s"].items()])
        print(rows[-1], flush=True)
    return rows, stages


def qm9_benchmark(args) -> None:
    from rhocast import sources

    n_val = 40
    path = CACHE / "qm9_guess_6"
    print(compute_references(sources.qm9(args.qm9 + n_val, seed=0, max_heavy_atoms=6), path,
                             n_workers=args.workers, xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit",
                             grid_level=1, conv_tol=1e-7))
    ds = Dataset(path)
    idx = ds.indices()
    train = idx[idx < args.qm9]
    known = {int(z) for i in train for z in ds.atoms(int(i)).numbers}
    val = np.array([i for i in idx[(idx >= args.qm9) & (idx < args.qm9 + n_val)]
                    if set(ds.atoms(int(i)).numbers) <= known])
    scf_time = scf_seconds(ds, val[:3])
    floor_val = np.mean([ds.floor(int(i))["relative_l2"] for i in val])
    rows, stages = fit_rows(args, ds, train, val, None, floor_val, "-", scf_time)
    stage_lines = "\n".join("- " + str(s[0]) + " sparse: " + "; ".join(s[1:]) + " (s)" for s in stages)
    record("Training: QM9 subset",
           f"{len(train)} QM9 molecules with at most 6 heavy atoms, {len(val)} validation molecules (elements seen in "
           f"training); PBE/def2-SVP at grid level 1, def2-universal-jkfit (Coulomb fit), overlap-metric loss, zeta 2, "
           f"cutoff 4 A, 8 radial, l <= 6, {args.n_features} selected features, solver {args.solver}. SCF time per "
           f"molecule {scf_time:.2f} s.\n\n{markdown_table(COLUMNS, rows)}\n\nTime by stage:\n{stage_lines}")


if __name__ == "__main__":
    main()
