"""What buys accuracy on QM9: one setting changed at a time from the benchmark's model, measured on the
validation molecules (the first pool molecules, never trained on; the common test set is not used here).

Trains on the same molecules of qm9.py's reference pool ($RHOCAST_BENCH_CACHE/qm9_train) for every row,
so the rows differ only by the setting named (the farthest-point row picks its own molecules from the
pool: same number, same validation set). Each finished row is kept in a JSON file beside the pool
(rerun to continue; a row is recomputed only when its settings change) and the table is recorded.

    python benchmarks/qm9_study.py --n-train 100
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from _record import markdown_table, record
from qm9 import CACHE, select_farthest
from rhocast.accuracy import density_errors
from rhocast.atomic import atomic_write
from rhocast.dataset import Dataset
from rhocast.model import DensityModel

# The shipped model's settings (qm9.py's defaults). The first study (100 molecules, recorded in RESULTS.md
# and kept in qm9_study_100.json) started from eta 1e-3 uncapped in float64 and found eta 1e-4 better.
BASE = dict(cutoff=4.0, max_radial=6, max_angular=4, n_sparse=300, n_features=200, zeta=2.0,
            regularization=1e-4, loss_metric="overlap", solver="cg", cg_tol=1e-6, max_rkhs=250,
            psi_precision="float32")
# (label, change from BASE), cheapest and most telling first. "selection" is not a model parameter: which
# pool molecules train (the first of the random pool, or farthest-point selection among all of it).
ROWS = [
    ("benchmark model", {}),
    ("regularization 1e-5", {"regularization": 1e-5}),
    ("regularization 1e-3", {"regularization": 1e-3}),
    ("1000 sparse environments, RKHS cap 500", {"n_sparse": 1000, "max_rkhs": 500}),
    ("farthest-point training set", {"selection": "fps"}),
    ("500 features", {"n_features": 500}),
    ("8 radial, l <= 6", {"max_radial": 8, "max_angular": 6}),
    ("cutoff 5 A", {"cutoff": 5.0}),
    ("zeta 1", {"zeta": 1.0}),
    ("Coulomb loss", {"loss_metric": "coulomb"}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=100)
    p.add_argument("--n-validation", type=int, default=50, help="as in qm9.py: the first pool molecules")
    p.add_argument("--rows", nargs="+", default=None, help="labels of the rows to run (default: all)")
    args = p.parse_args()
    pool = Dataset(CACHE / "qm9_train")
    done = pool.indices()
    validation, candidates = done[:args.n_validation], done[args.n_validation:]
    store = CACHE / f"qm9_study_{args.n_train}.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for label, change in ROWS:
        if args.rows and label not in args.rows:
            continue
        params = {**BASE, **change}
        if label in results and results[label]["params"] == params:
            continue
        model_params = {k: v for k, v in params.items() if k != "selection"}
        if params.get("selection") == "fps":
            train = np.sort(candidates[select_farthest(pool, candidates, args.n_train)])
        else:
            train = np.sort(candidates[:args.n_train])
        model = DensityModel(**model_params).fit(pool, train, progress=False)
        seconds = float(sum(model.fit_report_["times_s"].values()))
        e = density_errors(model, pool, validation)
        report = model.fit_report_
        results[label] = {"params": params, "relative_l2": e.relative_l2, "baseline_relative": e.baseline_relative,
                          "fit_s": seconds, "peak_gb": report["peak_memory_mb"] / 1e3,
                          "n_weights": report["n_weights"], "cg_iterations": report.get("cg_iterations")}
        print(label, results[label], flush=True)
        with atomic_write(store) as tmp:
            tmp.write_text(json.dumps(results, indent=1))
    current = {label: {**BASE, **change} for label, change in ROWS}  # rows of an older BASE stay in the file only
    rows = [[label, r["relative_l2"], r["baseline_relative"], r["n_weights"], r["cg_iterations"], r["fit_s"],
             r["peak_gb"]] for label, r in results.items() if current.get(label) == r["params"]]
    record(f"QM9: what buys accuracy ({args.n_train} training molecules)",
           f"{args.n_train} training molecules of the pool {CACHE / 'qm9_train'} and its first {len(validation)} as "
           f"validation (9 heavy atoms; the test set is not used). Benchmark model: {BASE}. One change per row. "
           "Fit times on the shared 2-core machine (other jobs running): compare within a column with care.\n\n"
           + markdown_table(["setting", "validation rel. L2 %", "baseline-rel. %", "weights", "CG iterations",
                             "fit (s)", "peak memory (GB)"], rows))


if __name__ == "__main__":
    main()
