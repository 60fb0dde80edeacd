"""QM9: learning curve, total-energy MAE from one Kohn-Sham step against chemical accuracy.

References (PBE/def2-SVP, def2-universal-jkfit, grid level 1, conv_tol 1e-8: the settings of the common
test set ../shared/data/qm9_test_150.h5; 14.5 s per 18-atom molecule on this kind of machine) are built
resumably in $RHOCAST_BENCH_CACHE (default ~/.cache/rhocast-bench); run it in the background and rerun to
continue — the script says how far it is and uses what is there. Training molecules are drawn at random
from all of qm9pack's QM9 with the test set's molecules (by QM9 index) excluded.

    python benchmarks/qm9.py --n 3000 --build-only      # in the background: references, resumable
    python benchmarks/qm9.py --sizes 100 300 1000 2000  # learning curve, energies, trust indicators
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import plots, sources
from rhocast.dataset import Dataset
from rhocast.accuracy import density_errors
from rhocast.kohn_sham import kohn_sham_step, step_options
from rhocast.model import DensityModel
from rhocast.references import compute_references
from rhocast.units import HARTREE_KCAL_MOL

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
    drawn = sources.qm9(n + len(exclude), seed=0, max_heavy_atoms=max_heavy_atoms)
    return [a for a in drawn if a.info["qm9_index"] not in exclude][:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=3000,
                   help="references to build in the training pool (0: build none, use the cached ones)")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 2000],
                   help="training-set sizes of the learning curve (those with enough references are run)")
    p.add_argument("--n-validation", type=int, default=50,
                   help="the first pool molecules, kept out of training: they choose the regularization")
    p.add_argument("--n-test", type=int, default=None, help="only the first N test molecules (smoke runs)")
    p.add_argument("--build-only", action="store_true")
    p.add_argument("-j", "--workers", type=int, default=1)
    p.add_argument("--guess-model", default=None,
                   help="start new references' SCFs from this model's density (the best model so far)")
    p.add_argument("--max-heavy-atoms", type=int, default=None,
                   help="small molecules only; with 6 the references are shared with scf_guess.py")
    p.add_argument("--n-sparse", type=int, default=1000)
    p.add_argument("--n-features", type=int, default=200, help="selected feature columns per lambda")
    p.add_argument("--max-rkhs", type=int, default=250, help="RKHS dimension cap per (species, lambda)")
    # qm9_study.py: at 100 molecules eta 1e-4 beat 1e-3 by 17 %; the 1/N loss wants smaller eta as N grows
    p.add_argument("--regularization", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3],
                   help="candidate etas; the one with the lowest validation error is kept per size")
    p.add_argument("--selection", choices=["random", "fps"], default="random",
                   help="training molecules of each size: the first of the random pool, or farthest-point "
                        "selection over whole molecules (rhocast.selection) among the pool's references")
    args = p.parse_args()
    (CACHE / "models").mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    path = CACHE / ("qm9_train" if args.max_heavy_atoms is None else f"qm9_guess_{args.max_heavy_atoms}")
    print(f"references: {path}", flush=True)
    if path.with_suffix(".h5").is_file() and not path.exists():  # a cache written by the version-1 layout
        from rhocast.dataset import convert

        convert(path.with_suffix(".h5"), path)
    if args.n > 0:
        summary = compute_references(training_pool(args.n, args.max_heavy_atoms), path, n_workers=args.workers,
                                     guess_model=args.guess_model, **SETTINGS)
        print(summary)
    print(reference_cost(Dataset(path)))
    if args.build_only:
        return
    if not TEST_SET.with_suffix(".h5").exists():
        raise SystemExit(f"the common test set {TEST_SET.with_suffix('.h5')} is absent: nothing to measure on")
    pool, test = Dataset(path), Dataset(TEST_SET.with_suffix(".h5"))
    done = pool.indices()
    validation, train_pool = done[:args.n_validation], done[args.n_validation:]
    sizes = [n for n in args.sizes if n <= len(train_pool)] or [len(train_pool)]
    if args.selection == "fps":  # greedy, so each size's selection contains the smaller ones
        train_pool = train_pool[select_farthest(pool, train_pool, max(sizes))]
    rows, model = [], None
    for n in sizes:
        model, eta, t_fit = fit_with_validation(pool, train_pool[:n], validation, args)
        model.save(CACHE / "models" / f"qm9_{n}{'_fps' if args.selection == 'fps' else ''}.h5")  # the next references' SCF guess
        known = set(model.species_)
        test_idx = [i for i in test.indices()[:args.n_test] if set(test.atoms(int(i)).numbers) <= known]
        e = density_errors(model, test, test_idx)
        rows.append([n, eta, e.relative_l2, e.baseline_relative, t_fit, model.fit_report_["peak_memory_mb"] / 1e3])
        print(rows[-1], flush=True)
    floor = float(np.mean([test.floor(int(i))["relative_l2"] for i in test_idx]))
    energies = test_set_energies(model, test, test_idx)
    plots.learning_curve(FIGURES / "qm9_learning_curve.png", [r[0] for r in rows], [r[2] for r in rows],
                         "test-set (qm9_test_150)", floor, title="QM9 (9 heavy atoms): density learning curve")
    plots.energy_error_histogram(FIGURES / "qm9_energy_errors.png",
                                 {k: energies[k] for k in ("one KS step", "Harris-Foulkes", "after Newton step")},
                                 "kcal/mol", threshold=1.0,
                                 title=f"QM9 test set: total-energy errors, {sizes[-1]} training molecules")
    record("QM9: learning curve and total energies from one Kohn-Sham step"
           + (" (farthest-point training sets)" if args.selection == "fps" else ""),
           f"Training pool: {len(done)} references in {path} (PBE/def2-SVP, def2-universal-jkfit Coulomb fit, grid "
           f"level 1, conv_tol 1e-8; drawn at random from all of QM9 with the test molecules excluded by QM9 index); "
           f"training sets: {'farthest-point selection among the pool' if args.selection == 'fps' else 'random'}; "
           f"validation: the first {len(validation)} pool molecules (they choose eta among {args.regularization}); "
           f"test: {len(test_idx)} of the {len(test)} molecules of qm9_test_150 (the others contain elements absent "
           f"from training). Model: {args.n_sparse} sparse environments per species, cutoff 4 A, 6 radial, l <= 4, "
           f"{args.n_features} features, RKHS cap {args.max_rkhs}, float32 Psi, zeta 2, overlap loss. Fitting floor of the test set {floor:.3f} % rel. L2.\n\n"
           + markdown_table(["train molecules", "eta", "test rel. L2 %", "test baseline-rel. %", "fit (s)",
                             "peak memory (GB)"], rows)
           + "\n\n" + reference_cost(pool) + "\n\n" + energy_report(energies)
           + "\n\n![learning curve](figures/qm9_learning_curve.png) ![energy errors](figures/qm9_energy_errors.png)")


def reference_cost(pool: Dataset) -> str:
    """SCF cycles and wall time of the pool's references by where their SCF started (minao, or the best
    model of an earlier run through rhocast's SCF guess: prediction, Kohn-Sham and Newton steps included)."""
    rows = []
    for guess in ("minao", "model"):
        idx = [i for i in pool.indices() if pool.info(int(i)).get("guess", "minao") == guess]
        if idx:
            cycles = [pool.info(int(i))["iterations"] for i in idx]
            seconds = [pool.info(int(i))["wall_time"] for i in idx]
            rows.append([guess, len(idx), float(np.mean(cycles)), float(np.mean(seconds))])
    return "Reference SCFs by initial guess (machine shared with other work: compare cycles first):\n\n" + \
        markdown_table(["SCF started from", "references", "mean SCF cycles", "mean wall time per reference (s)"],
                       rows)


def select_farthest(pool: Dataset, candidates: np.ndarray, n: int) -> np.ndarray:
    """Positions in ``candidates`` of ``n`` pool molecules picked by farthest-point selection."""
    from rhocast.selection import farthest_structures

    structures = [pool.atoms(int(i)) for i in candidates]
    species = sorted({int(z) for a in structures for z in a.numbers})
    return farthest_structures(structures, n, species, cutoff=4.0, max_radial=6, max_angular=4)


def fit_with_validation(ds, train, validation, args):
    """The model with the lowest validation error over ``args.regularization``; (model, eta, fit seconds)."""
    best = None
    for eta in args.regularization:
        t = time.perf_counter()
        model = DensityModel(cutoff=4.0, max_radial=6, max_angular=4, n_sparse=args.n_sparse,
                             n_features=args.n_features, max_rkhs=args.max_rkhs, psi_precision="float32",
                             regularization=eta, solver="cg", cg_tol=1e-6)
        model.fit(ds, np.sort(train), progress=False)
        seconds = time.perf_counter() - t
        err = density_errors(model, ds, validation).relative_l2
        print(f"  {len(train)} molecules, eta {eta:g}: validation rel. L2 {err:.4f} %", flush=True)
        if best is None or err < best[0]:
            best = (err, model, eta, seconds)
    return best[1:]


def test_set_energies(model, test, indices) -> dict:
    """Signed total-energy errors (kcal/mol per molecule) of the test molecules: the output density of one
    Kohn-Sham step, Harris-Foulkes of the input density, and the energy after the Newton response step (not
    a single diagonalisation: labelled so), with the trust indicators and the nitrogen count of each."""
    from rhocast.references import ReferenceSettings, make_scf
    from rhocast.scf_guess import guess_from_density
    from rhocast.uncertainty import step_energy_change, structure_indicators

    settings = ReferenceSettings(**SETTINGS).resolved()
    out = {k: [] for k in ("one KS step", "Harris-Foulkes", "after Newton step", "novelty", "count error",
                           "step energy change", "nitrogens", "seconds")}
    for i in indices:
        a = test.atoms(int(i))
        t = time.perf_counter()
        c = model.predict(a)
        r = kohn_sham_step(a, c, **step_options(model.reference_settings_, test.settings))
        out["seconds"].append(time.perf_counter() - t)
        ref = test.energies(int(i))["total"]
        mf = make_scf(a, settings)
        newton = mf.energy_tot(guess_from_density(mf, c, model.auxbasis_.spec))
        out["one KS step"].append((r.total_energy - ref) * HARTREE_KCAL_MOL)
        out["Harris-Foulkes"].append((r.harris_foulkes - ref) * HARTREE_KCAL_MOL)
        out["after Newton step"].append((newton - ref) * HARTREE_KCAL_MOL)
        trust = structure_indicators(model, a, c)
        out["novelty"].append(trust.max_novelty)
        out["count error"].append(abs(trust.electron_count_error))
        out["step energy change"].append(step_energy_change(r) * HARTREE_KCAL_MOL)
        out["nitrogens"].append(int((a.numbers == 7).sum()))
    return {k: np.array(v) for k, v in out.items()}


def energy_report(e: dict) -> str:
    """Tables: energy MAE and share within 1 kcal/mol per method, per nitrogen count, and how well each
    trust indicator flags the errors above 1 kcal/mol."""
    from scipy.stats import spearmanr

    methods = ("one KS step", "Harris-Foulkes", "after Newton step")
    overall = markdown_table(["energy", "MAE (kcal/mol)", "median |error|", "max |error|", "within 1 kcal/mol"],
                             [[m, float(np.mean(np.abs(e[m]))), float(np.median(np.abs(e[m]))),
                               float(np.max(np.abs(e[m]))), f"{int((np.abs(e[m]) < 1).sum())} of {e[m].size}"]
                              for m in methods])
    family = markdown_table(["nitrogens", "molecules"] + [f"{m} MAE" for m in methods],
                            [[n, int((e["nitrogens"] == n).sum())]
                             + [float(np.mean(np.abs(e[m][e["nitrogens"] == n]))) for m in methods]
                             for n in sorted(set(e["nitrogens"].tolist()))])
    bad, tail = np.abs(e["one KS step"]) > 1, np.abs(e["one KS step"]) > 5  # the tail: where a user is misled
    trust_rows = []
    for name in ("novelty", "count error", "step energy change"):
        rho = spearmanr(e[name], np.abs(e["one KS step"])).statistic
        threshold = np.quantile(e[name], 0.9)  # flags at most 10 % of the molecules
        flagged = e[name] > threshold
        trust_rows.append([name, float(rho), f"{int((flagged & bad).sum())} of {int(bad.sum())}",
                           f"{int((flagged & tail).sum())} of {int(tail.sum())}", int(flagged.sum())])
    trust = markdown_table(["indicator", "Spearman rank corr. with |error|", "errors > 1 kcal/mol flagged",
                            "errors > 5 kcal/mol flagged", "molecules flagged (10 %)"], trust_rows)
    return (f"Total energy per molecule (prediction + KS step {np.mean(e['seconds']):.1f} s per molecule):\n\n"
            f"{overall}\n\nBy chemical family (one-step errors, kcal/mol):\n\n{family}\n\n"
            f"Trust indicators against the one-step error:\n\n{trust}")


if __name__ == "__main__":
    main()
