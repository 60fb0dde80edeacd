"""SCF iterations and wall time from rhocast's predicted guess against PySCF's own guesses (QM9).

Trains a model on QM9 references (built and cached resumably in benchmarks/cache), then, for held-out
molecules, counts SCF cycles to convergence from minao, atom, huckel (and sap if PySCF has it) and from
the model: ``rhocast.scf_guess`` (prediction + one Kohn-Sham step + the Newton step of rhocast.response,
all in its wall time), and the same without the Newton step. Controls: "minao + Newton" puts the Coulomb
fit of PySCF's minao density through the same Kohn-Sham and Newton steps (what the machinery does without
learning); "reference fit" starts from the fitted reference density itself (what a perfect model would give).

    python benchmarks/scf_guess.py [--n-train 60] [--n-test 20]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import sources
from rhocast.dataset import Dataset
from rhocast.accuracy import density_errors
from rhocast.density_fitting import fit_density
from rhocast.model import DensityModel
from rhocast.references import ReferenceSettings, compute_references, make_scf
from rhocast.scf_guess import guess_from_density, scf_guess

CACHE = Path(__file__).with_name("cache")
SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=1, conv_tol=1e-7)


class FockCounter:
    """Counts Fock builds as they happen: calls of ``mf.get_veff`` (PySCF's J/K/xc build, once per SCF
    cycle and once for the initial energy) and Kohn-Sham steps of rhocast (one Fock matrix each, two with
    the output-density energies)."""

    def __init__(self, mf):
        import rhocast.kohn_sham as ks

        self.n, self._ks, self._step = 0, ks, ks.kohn_sham_step
        get_veff = mf.get_veff

        def counted_veff(*args, **kwargs):
            self.n += 1
            return get_veff(*args, **kwargs)

        def counted_step(*args, **kwargs):
            self.n += 2 if kwargs.get("output_energies", True) else 1
            return self._step(*args, **kwargs)

        mf.get_veff = counted_veff
        self._counted_step = counted_step

    def __enter__(self) -> "FockCounter":
        self._ks.kohn_sham_step = self._counted_step
        return self

    def __exit__(self, *exc) -> None:
        self._ks.kohn_sham_step = self._step


def cycles_from(mf, dm0=None, init_guess=None, guess=None):
    """(SCF cycles, wall time, converged, Fock builds) from ``dm0``, PySCF's ``init_guess``, or
    ``guess(mf)`` (its time and Fock builds included)."""
    counter = []
    mf.callback = lambda env: counter.append(env["cycle"])
    if init_guess:
        mf.init_guess = init_guess
    with FockCounter(mf) as fock:
        t = time.perf_counter()
        if guess is not None:
            dm0 = guess(mf)
        mf.kernel(dm0=dm0)
        seconds = time.perf_counter() - t
    return len(counter), seconds, mf.converged, fock.n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--max-heavy-atoms", type=int, default=6)
    p.add_argument("--n-sparse", type=int, default=300)
    p.add_argument("--regularization", type=float, default=1e-3)
    args = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    molecules = sources.qm9(args.n_train + args.n_test, seed=0, max_heavy_atoms=args.max_heavy_atoms)
    path = CACHE / f"qm9_guess_{args.max_heavy_atoms}"
    print(compute_references(molecules, path, **SETTINGS))
    ds = Dataset(path)
    idx = ds.indices()
    train, test = idx[idx < args.n_train], idx[(idx >= args.n_train) & (idx < args.n_train + args.n_test)]
    model = DensityModel(n_sparse=args.n_sparse, max_radial=6, max_angular=4, n_features=500, cg_tol=1e-6,
                         regularization=args.regularization, solver="cg").fit(ds, train)
    settings = ReferenceSettings(**SETTINGS).resolved()
    guesses = ["minao", "atom", "huckel"]
    from pyscf.scf import hf

    if hasattr(hf, "init_guess_by_sap"):
        guesses.append("sap")
    spec = model.auxbasis_.spec

    def minao_newton(mf, fit):
        minao = fit_density(mf.mol, model.auxbasis_.make_auxmol(mf.mol), mf.get_init_guess(key="minao"))
        return guess_from_density(mf, minao, spec)

    # dm0 from (mf, the molecule's fitted reference coefficients)
    density_guesses = {"rhocast": lambda mf, fit: scf_guess(mf, model),
                       "rhocast without Newton": lambda mf, fit: scf_guess(mf, model, newton=False),
                       "minao + Newton": minao_newton,
                       "reference fit": lambda mf, fit: guess_from_density(mf, fit, spec),
                       "reference fit without Newton": lambda mf, fit: guess_from_density(mf, fit, spec, newton=False)}
    results = {g: [] for g in guesses + list(density_guesses)}
    skipped, held_out = [], []
    for i in test:
        atoms = ds.atoms(int(i))
        if not set(atoms.numbers) <= set(model.species_):
            skipped.append(atoms.get_chemical_formula())  # an element no training molecule has
            continue
        held_out.append(int(i))
        for g in guesses:
            results[g].append(cycles_from(make_scf(atoms, settings), init_guess=g))
        fit = ds.coefficients(int(i))
        for name, guess in density_guesses.items():
            results[name].append(cycles_from(make_scf(atoms, settings), guess=lambda mf: guess(mf, fit)))
        print(atoms.get_chemical_formula(), {k: v[-1][0] for k, v in results.items()}, flush=True)
    err = density_errors(model, ds, held_out)
    rows = []
    base = np.mean([r[0] for r in results["minao"]])
    for g, r in results.items():
        r = np.array(r, dtype=float)
        rows.append([g, float(r[:, 0].mean()), float(1 - r[:, 0].mean() / base), float(r[:, 3].mean()),
                     float(r[:, 1].mean()), int(r[:, 2].sum())])
    record("SCF initial guess from predicted densities (QM9, PBE/def2-SVP)",
           f"{len(train)} training and {len(test)} held-out molecules with at most {args.max_heavy_atoms} heavy "
           f"atoms ({len(skipped)} skipped for elements absent from training: {skipped}); CG iterations "
           f"{model.cg_iterations_}; {args.n_sparse} sparse environments, regularization {args.regularization:g}; grid level 1, conv_tol 1e-7. Wall times of the density-started rows include prediction (or fit), the Kohn-Sham step and the Newton step; Fock builds are counted as they happen (calls of mf.get_veff and of rhocast's Kohn-Sham step; the Newton step needs no Fock build: three-centre integrals and a coarse-grid xc kernel). "
           f"Density error of the model on these molecules: {err.relative_l2:.3g} % rel. L2 against the fit, "
           f"{err.baseline_relative:.3g} % of the error of the spherical-atom baseline.\n\n"
           + markdown_table(["guess", "mean SCF cycles", "fewer than minao", "mean Fock builds", "mean wall time (s)",
                             "converged"], rows))


if __name__ == "__main__":
    main()
