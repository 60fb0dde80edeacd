"""The end-to-end demo: structures -> references -> fit -> prediction -> errors -> energies -> SCF guess.

Runs on distorted water molecules it builds itself (nothing is downloaded), in a few minutes on two
cores. Everything it computes goes to one folder; references are resumable, so a rerun is fast.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rhocast.units import HARTREE_MEV

SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=2, conv_tol=1e-9)
MODEL = dict(cutoff=4.0, max_radial=6, max_angular=4, n_sparse=40, zeta=2.0, regularization=1e-8)


def run_demo(folder: str = "rhocast-demo", n_structures: int = 48, n_test: int = 8,
             train_sizes=(8, 16, 40), n_scf_guess: int = 3, progress: bool = True) -> dict:
    """Run the whole pipeline and return its summary; files and PNG plots go to ``folder``."""
    from rhocast.accuracy import density_errors

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    t = time.perf_counter()
    ds = _references(out, n_structures, progress)
    timings["references"] = time.perf_counter() - t
    order = np.random.default_rng(1).permutation(ds.indices())
    test, pool = np.sort(order[:n_test]), order[n_test:]

    t = time.perf_counter()
    model, curve = _learning_curve(ds, pool, test, train_sizes, progress)
    timings["fit (learning curve)"] = time.perf_counter() - t
    model.save(out / "model.h5")
    err = density_errors(model, ds, test, grid=True)
    floor_l2 = float(np.mean([ds.floor(int(i))["relative_l2"] for i in test]))

    t = time.perf_counter()
    energy = _energy_errors(ds, model, test, progress)
    timings["Kohn-Sham steps"] = time.perf_counter() - t

    t = time.perf_counter()
    cycles = _scf_cycles(ds, model, test[:n_scf_guess], progress)
    timings["SCF guess"] = time.perf_counter() - t

    _plots(out, ds, model, test, curve, floor_l2)
    result = {"folder": str(out.resolve()), "learning_curve": curve, "relative_l2": err.relative_l2,
              "baseline_relative": err.baseline_relative, "nmae": float(np.mean(err.nmae)),
              "floor_relative_l2": floor_l2, "floor_nmae": float(np.mean(err.floor_nmae)),
              "energy_mae_ks_mev_atom": float(energy[:, 0].mean()),
              "energy_mae_harris_mev_atom": float(energy[:, 1].mean()),
              "energy_mae_fit_mev_atom": float(energy[:, 2].mean()),
              "scf_cycles_minao": float(cycles[:, 0].mean()), "scf_cycles_model": float(cycles[:, 1].mean()),
              "timings_s": timings}
    print(format_summary(result))
    return result


def _references(out: Path, n_structures: int, progress: bool):
    """PBE references of ``n_structures`` distorted waters in ``out``/references (resumable); their Dataset."""
    from rhocast import sources
    from rhocast.dataset import Dataset
    from rhocast.references import compute_references

    structures = sources.distorted_waters(n_structures, seed=0)
    print(compute_references(structures, out / "references", n_workers=1, progress=progress, **SETTINGS))
    return Dataset(out / "references")


def _learning_curve(ds, pool, test, train_sizes, progress: bool):
    """Models fitted on the first n of ``pool`` for each n of ``train_sizes``; the last model and the rows
    (n, relative L2 %, baseline-relative %) on ``test``."""
    from rhocast.accuracy import density_errors
    from rhocast.model import DensityModel
    from rhocast.progress import progress_bar

    curve, model = [], None
    for n in progress_bar(train_sizes, show=progress, desc="fit (learning curve)", unit="model"):
        train = np.sort(pool[:n])
        model = DensityModel(**MODEL).fit(ds, train, progress=False)
        err = density_errors(model, ds, test)
        curve.append((len(train), err.relative_l2, err.baseline_relative))
        print(f"  trained on {len(train):3d}: relative L2 {err.relative_l2:.3f} %, "
              f"baseline-relative {err.baseline_relative:.2f} %")
    return model, curve


def _energy_errors(ds, model, test, progress: bool) -> np.ndarray:
    """|E - E_ref| per atom (meV), (n_test, 3): KS step from the prediction, Harris-Foulkes energy of the
    prediction, KS step from the reference's own fit."""
    from rhocast.kohn_sham import kohn_sham_step
    from rhocast.progress import progress_bar

    options = dict(basis=SETTINGS["basis"], auxbasis=SETTINGS["auxbasis"], xc=SETTINGS["xc"],
                   grid_level=SETTINGS["grid_level"])
    rows = []
    for i in progress_bar(test, show=progress, desc="Kohn-Sham steps", unit="structure"):
        atoms = ds.atoms(int(i))
        ref = ds.energies(int(i))["total"]
        pred = kohn_sham_step(atoms, model.predict(atoms), **options)
        fit = kohn_sham_step(atoms, ds.coefficients(int(i)), **options)
        n = len(atoms)
        rows.append(((pred.total_energy - ref) * HARTREE_MEV / n, (pred.harris_foulkes - ref) * HARTREE_MEV / n,
                     (fit.total_energy - ref) * HARTREE_MEV / n))
    return np.abs(np.array(rows))


def _scf_cycles(ds, model, indices, progress: bool) -> np.ndarray:
    """SCF cycles (n, 2) from PySCF's minao guess and from the model's predicted density."""
    from rhocast.progress import progress_bar
    from rhocast.references import ReferenceSettings, run_scf
    from rhocast.scf_guess import scf_guess

    cycles = []
    settings = ReferenceSettings(**SETTINGS).resolved()
    for i in progress_bar(indices, show=progress, desc="SCF from minao and from the model", unit="structure"):
        mf, n_minao = run_scf(ds.atoms(int(i)), settings)
        counter = []
        mf.callback = lambda env, c=counter: c.append(env["cycle"])
        mf.kernel(dm0=scf_guess(mf, model))
        cycles.append((n_minao, len(counter)))
    return np.array(cycles)


def _plots(out: Path, ds, model, test, curve: list, floor_l2: float) -> None:
    """Learning curve, coefficient parity and a density-error slice of the first test structure."""
    from rhocast import plots

    plots.learning_curve(out / "learning_curve.png", [c[0] for c in curve], [c[1] for c in curve], "held-out test",
                         floor=floor_l2, title="water: density learning curve")
    test_atoms = [ds.atoms(int(i)) for i in test]
    plots.coefficient_parity(out / "parity.png", test_atoms, [ds.coefficients(int(i)) for i in test],
                             model.predict(test_atoms), model.auxbasis_)
    a0 = ds.atoms(int(test[0]))
    plots.density_slice(out / "density_error_slice.png", a0, ds.coefficients(int(test[0])), model.predict(a0),
                        model.auxbasis_)


def format_summary(r: dict) -> str:
    t = r["timings_s"]
    return "\n".join([
        "",
        "rhocast demo: water, PBE/def2-SVP, auxiliary basis def2-universal-jkfit",
        f"  folder                          : {r['folder']}",
        f"  density error (held-out)        : relative L2 {r['relative_l2']:.3f} % "
        f"(fit floor {r['floor_relative_l2']:.3f} %), baseline-relative {r['baseline_relative']:.2f} %",
        f"  real-space NMAE vs fitted ref.  : {r['nmae']:.3f} % (fit vs SCF floor {r['floor_nmae']:.3f} %)",
        f"  energy error, KS step (output)  : {r['energy_mae_ks_mev_atom']:.4f} meV/atom "
        f"(from the reference fit: {r['energy_mae_fit_mev_atom']:.4f})",
        f"  energy error, Harris-Foulkes    : {r['energy_mae_harris_mev_atom']:.3f} meV/atom",
        f"  SCF cycles from minao / model   : {r['scf_cycles_minao']:.1f} / {r['scf_cycles_model']:.1f}",
        "  time (s)                        : " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()),
        "  plots                           : learning_curve.png, parity.png, density_error_slice.png",
    ])
