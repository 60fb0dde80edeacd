"""QM9: learning curve, total-energy MAE from one Kohn-Sham step against chemical accuracy.

References (PBE/def2-SVP, def2-universal-jkfit, grid level 1, conv_tol 1e-8: the settings of the common
test set ../shared/data/qm9_test_150.h5; 14.5 s per 18-atom molecule on this kind of machine) are built
resumably in $RHOCAST_BENCH_CACHE (default ~/.cache/rhocast-bench); run it in the background and rerun to
continue — the script says how far it is and uses what is there. Training molecules are drawn at random
from all of qm9pack's QM9 with the test set's molecules (by QM9 index) excluded.

    python benchmarks/qm9.py [--n 500] [--sizes 50 100 200 400] [--build-only]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import datasets, plots
from rhocast.dataset import Dataset
from rhocast.errors import density_errors
from rhocast.kohn_sham import kohn_sham_step, step_options
from rhocast.model import DensityModel
from rhocast.references import compute_references
from rhocast.units import HARTREE_MEV, HARTREE_KCAL_MOL

CACHE = Path(os.environ.get("RHOCAST_BENCH_CACHE", "~/.cache/rhocast-bench")).expanduser()
TEST_SET = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_test_150.xyz"
FIGURES = Path(__file__).with_name("figures")
SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=1, conv_tol=1e-8)


def test_indices() -> set[int]:
    """QM9 indices of the common test set (never trained on); empty with a warning when shared/ is absent."""
    if not TEST_SET.exists():
        print(f"warning: {TEST_SET} not found; the training pool cannot exclude the common test set")
        return set()
    from ase.io import read

    return {int(a.info["qm9_index"]) for a in read(TEST_SET, ":")}


def training_pool(n: int, max_heavy_atoms=None) -> list:
    """The first ``n`` molecules of a fixed random draw from QM9, test-set molecules removed.

    The draw is a prefix of the same permutation for every ``n``, so a larger ``n`` extends the cached
    references instead of replacing them.
    """
    exclude = test_indices()
    drawn = datasets.qm9(n + len(exclude), seed=0, max_heavy_atoms=max_heavy_atoms)
    return [a for a in drawn if a.info["qm9_index"] not in exclude][:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--n-test", type=int, default=50)
    p.add_argument("--build-only", action="store_true")
    p.add_argument("-j", "--workers", type=int, default=1)
    p.add_argument("--max-heavy-atoms", type=int, default=None,
                   help="small molecules only; with 6 the references are shared with scf_guess.py")
    p.add_argument("--n-sparse", type=int, default=1000)
    p.add_argument("--regularization", type=float, default=1e-3,
                   help="eta of the loss; on 150 QM9 molecules 1e-3 cut the Coulomb-metric test error 3.6-fold against 1e-8")
    args = p.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    path = CACHE / ("qm9_train.h5" if args.max_heavy_atoms is None else f"qm9_guess_{args.max_heavy_atoms}.h5")
    print(f"references: {path}", flush=True)
    molecules = training_pool(args.n, args.max_heavy_atoms)
    summary = compute_references(molecules, path, n_workers=args.workers, **SETTINGS)
    print(summary)
    if args.build_only:
        return
    ds = Dataset(path)
    idx = np.random.default_rng(0).permutation(ds.indices())
    test, pool = np.sort(idx[:args.n_test]), idx[args.n_test:]
    # a model predicts only elements it was trained on: test molecules with others are left out
    known = {int(z) for i in pool[:min(args.sizes)] for z in ds.atoms(int(i)).numbers}
    left_out = [ds.atoms(int(i)).get_chemical_formula() for i in test if not set(ds.atoms(int(i)).numbers) <= known]
    test = np.array([i for i in test if set(ds.atoms(int(i)).numbers) <= known])
    print(f"{len(ds)} of {args.n} references available; test {len(test)}, training pool {len(pool)}")
    rows, model = [], None
    for n in [s for s in args.sizes if s <= len(pool)]:
        model = DensityModel(cutoff=4.0, max_radial=6, max_angular=4, n_sparse=args.n_sparse, n_features=500,
                             regularization=args.regularization, solver="cg", cg_tol=1e-6)
        model.fit(ds, np.sort(pool[:n]), progress=False)
        e = density_errors(model, ds, test)
        rows.append([n, e.relative_l2, e.baseline_relative])
        print(rows[-1], flush=True)
    if model is None:
        print("not enough references yet")
        return
    err = []
    comps = {k: [] for k in ("total", "kinetic", "electron_nuclear", "hartree", "xc", "harris_foulkes")}
    t_ks = []
    for i in test:
        a = ds.atoms(int(i))
        t = time.perf_counter()
        r = kohn_sham_step(a, model.predict(a), **step_options(ds.settings))
        t_ks.append(time.perf_counter() - t)
        e = ds.energies(int(i))
        err.append((r.total_energy - e["total"]) * HARTREE_KCAL_MOL)
        for k in comps:
            value = r.harris_foulkes if k == "harris_foulkes" else r.output_energies[k]
            comps[k].append((value - e["total" if k == "harris_foulkes" else k]) * HARTREE_MEV / len(a))
    err = np.abs(err)
    t_scf = float(np.mean([ds.info(int(i))["wall_time"] for i in test]))
    components = markdown_table(["component", "MAE (meV/atom)", "max (meV/atom)"],
                                [[k, float(np.mean(np.abs(v))), float(np.max(np.abs(v)))] for k, v in comps.items()])
    floor = float(np.mean([ds.floor(int(i))["relative_l2"] for i in test]))
    plots.learning_curve(FIGURES / "qm9_learning_curve.png", [r[0] for r in rows], [r[1] for r in rows], "held-out test",
                         floor, title="QM9: density learning curve")
    record("QM9: learning curve and total energies from one Kohn-Sham step",
           f"{len(ds)} references of {args.n} requested (PBE/def2-SVP, grid level 1"
           f"{'' if args.max_heavy_atoms is None else f', at most {args.max_heavy_atoms} heavy atoms'}); "
           f"{len(test)} test molecules ({len(left_out)} left out for elements absent from training: {left_out}); "
           f"{args.n_sparse} sparse environments, regularization {args.regularization:g}, 6 radial, l <= 4, 500 features; "
           f"fitting floor {floor:.3f} % (rel. L2).\n\n"
           + markdown_table(["train molecules", "rel. L2 %", "baseline-rel. %"], rows)
           + f"\n\nTotal energy from the KS step of the largest model: MAE {err.mean():.3f} kcal/mol per molecule, "
           f"max {err.max():.3f}; {int((err < 1).sum())} of {len(err)} within chemical accuracy (1 kcal/mol). "
           f"Prediction + KS step {np.mean(t_ks):.1f} s per molecule against {t_scf:.1f} s for its reference "
           f"(SCF + fit).\n\nEnergy components of the output density (Harris-Foulkes: total):\n\n{components}\n\n"
           "![learning curve](figures/qm9_learning_curve.png)")


if __name__ == "__main__":
    main()
