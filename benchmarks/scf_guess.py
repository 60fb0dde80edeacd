"""SCF iterations and wall time from rhocast's predicted guess against PySCF's own guesses (QM9).

Trains a model on QM9 references (built and cached resumably in benchmarks/cache), then, for held-out
molecules, counts SCF cycles to convergence from minao, atom, huckel (and sap if PySCF has it) and from
the model: ``rhocast.scf_guess`` (prediction + one Kohn-Sham step + the Newton step of rhocast.response,
all in its wall time), and the same without the Newton step. Controls: "minao + Newton" puts the Coulomb
fit of PySCF's minao density through the same Kohn-Sham and Newton steps (what the machinery does without
learning); "reference fit" starts from the fitted reference density itself (what a perfect model would give).

    python benchmarks/scf_guess.py [--n-train 60] [--n-test 20]

With ``--model`` (a file or a shipped model's name) nothing is trained: the guesses are measured on the
common QM9 test set (``--molecules qm9-test``, with its reference fits as the perfect-model row) or on
larger organic molecules built from SMILES (``--molecules larger``: 15-41 heavy atoms, RDKit ETKDG +
MMFF94, the ``rdkit`` extra), in the model's basis and functional or in others (``--basis def2-tzvp
--xc b3lyp``: the predicted density is a guess in any basis).

    python benchmarks/scf_guess.py --model qm9-pbe-def2svp --molecules larger --n-test 6
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import sources
from rhocast.pretrained_models import load_model
from rhocast.dataset import Dataset
from rhocast.accuracy import density_errors
from rhocast.density_fitting import fit_density
from rhocast.model import DensityModel
from rhocast.references import ReferenceSettings, compute_references, make_scf
from rhocast.scf_guess import guess_from_density, scf_guess

CACHE = Path(__file__).with_name("cache")
SETTINGS = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=1, conv_tol=1e-7)
QM9_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_test_150.h5"
# Organic molecules larger than QM9's (15-41 heavy atoms, H C N O F: the elements QM9 models know).
LARGER = {
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "tryptophan": "N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O",
    "melatonin": "CC(=O)NCCc1c[nH]c2ccc(OC)cc12",
    "naproxen": "COc1ccc2cc(ccc2c1)[C@H](C)C(=O)O",
    "estradiol": "C[C@]12CC[C@H]3[C@@H](CCc4cc(O)ccc34)[C@@H]1CC[C@@H]2O",
    "tetra-alanine": "C[C@H](N)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)O",
    "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "oseltamivir": "CCC(CC)O[C@@H]1C=C(C[C@@H](N)[C@H]1NC(C)=O)C(=O)OCC",
    "sucrose": "OC[C@H]1O[C@@](CO)(O[C@H]2O[C@H](CO)[C@@H](O)[C@H](O)[C@H]2O)[C@@H](O)[C@@H]1O",
    "hexa-glycine": "NCC(=O)NCC(=O)NCC(=O)NCC(=O)NCC(=O)NCC(=O)O",
    "riboflavin": "Cc1cc2nc3c(=O)[nH]c(=O)nc-3n(C[C@H](O)[C@H](O)[C@H](O)CO)c2cc1C",
    "cholesterol": "C[C@H](CCCC(C)C)[C@H]1CC[C@@H]2[C@@]1(CC[C@H]3[C@H]2CC=C4[C@@]3(CC[C@@H](C4)O)C)C",
    "atorvastatin": "CC(C)c1c(C(=O)Nc2ccccc2)c(-c2ccccc2)c(-c2ccc(F)cc2)n1CC[C@@H](O)C[C@@H](O)CC(=O)O",
}


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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--max-heavy-atoms", type=int, default=6)
    p.add_argument("--n-sparse", type=int, default=300)
    p.add_argument("--regularization", type=float, default=1e-3)
    p.add_argument("--model", help="a fitted model file or a shipped model's name: nothing is trained")
    p.add_argument("--molecules", choices=("qm9-test", "larger"), default="qm9-test",
                   help="with --model: the common QM9 test set, or the larger molecules built from SMILES")
    p.add_argument("--basis", default=SETTINGS["basis"], help="orbital basis of the SCFs")
    p.add_argument("--xc", default=SETTINGS["xc"], help="functional of the SCFs")
    args = p.parse_args()
    if args.model:
        model = load_model(args.model)
        if args.molecules == "larger":
            names = list(LARGER)[:args.n_test]
            molecules, fits, ds = dict(zip(names, sources.from_smiles([LARGER[n] for n in names]))), {}, None
            what = f"{len(molecules)} larger organic molecules from SMILES (RDKit ETKDG + MMFF94)"
        else:
            ds = Dataset(QM9_TEST)
            idx = [int(i) for i in ds.indices()[:args.n_test]]
            molecules = {int(i): ds.atoms(i) for i in idx}
            fits = {i: ds.coefficients(i) for i in idx}
            what = f"the first {len(idx)} molecules of qm9_test_150 (never trained on)"
        what += f"; model {args.model} ({model.fit_report_['n_train']} training molecules)"
    else:
        model, molecules, fits, ds = trained_model_and_held_out(args)
        what = (f"{args.n_train} training and {len(molecules)} held-out molecules with at most {args.max_heavy_atoms} "
                f"heavy atoms; CG iterations {model.cg_iterations_}; {args.n_sparse} sparse environments, "
                f"regularization {args.regularization:g}")
    settings = ReferenceSettings(**{**SETTINGS, "basis": args.basis, "xc": args.xc}).resolved()
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
                       "minao + Newton": minao_newton}
    if fits:
        density_guesses.update({
            "reference fit": lambda mf, fit: guess_from_density(mf, fit, spec),
            "reference fit without Newton": lambda mf, fit: guess_from_density(mf, fit, spec, newton=False)})
    results = {g: [] for g in guesses + list(density_guesses)}
    skipped, held_out = [], []
    for key, atoms in molecules.items():
        if not set(atoms.numbers) <= set(model.species_):
            skipped.append(atoms.get_chemical_formula())  # an element no training molecule has
            continue
        held_out.append(key)
        for g in guesses:
            results[g].append(cycles_from(make_scf(atoms, settings), init_guess=g))
        for name, guess in density_guesses.items():
            results[name].append(cycles_from(make_scf(atoms, settings), guess=lambda mf: guess(mf, fits.get(key))))
        print(key, atoms.get_chemical_formula(), {k: v[-1][0] for k, v in results.items()}, flush=True)
    rows = []
    base = np.mean([r[0] for r in results["minao"]])
    for g, r in results.items():
        r = np.array(r, dtype=float)
        rows.append([g, float(r[:, 0].mean()), float(1 - r[:, 0].mean() / base), float(r[:, 3].mean()),
                     float(r[:, 1].mean()), int(r[:, 2].sum())])
    density = ""
    if fits:
        err = density_errors(model, ds, held_out)
        density = (f" Density error of the model on these molecules: {err.relative_l2:.3g} % rel. L2 against the fit, "
                   f"{err.baseline_relative:.3g} % of the error of the spherical-atom baseline.")
    sizes = [len(molecules[k]) for k in held_out]
    title = "SCF initial guess from predicted densities (QM9, PBE/def2-SVP)" if not args.model else \
        f"SCF initial guess from a fitted model: {args.molecules}, {args.xc.upper()}/{args.basis}"
    record(title,
           f"{what} ({len(skipped)} skipped for elements absent from training: {skipped}); {len(held_out)} molecules of "
           f"{min(sizes)}-{max(sizes)} atoms; SCF {args.xc}/{args.basis}, grid level 1, conv_tol 1e-7. Wall times of the "
           "density-started rows include prediction (or fit), the Kohn-Sham step and the Newton step; Fock builds are "
           "counted as they happen (calls of mf.get_veff and of rhocast's Kohn-Sham step; the Newton step needs no Fock "
           f"build: three-centre integrals and a coarse-grid xc kernel).{density}\n\n"
           + markdown_table(["guess", "mean SCF cycles", "fewer than minao", "mean Fock builds", "mean wall time (s)",
                             "converged"], rows))


def trained_model_and_held_out(args):
    """A model trained on small QM9 molecules (references cached in benchmarks/cache) and the held-out
    molecules with their reference fits: (model, {index: atoms}, {index: coefficients}, dataset)."""
    CACHE.mkdir(exist_ok=True)
    molecules = sources.qm9(args.n_train + args.n_test, seed=0, max_heavy_atoms=args.max_heavy_atoms)
    path = CACHE / f"qm9_guess_{args.max_heavy_atoms}"
    print(compute_references(molecules, path, **SETTINGS))
    ds = Dataset(path)
    idx = ds.indices()
    train, test = idx[idx < args.n_train], idx[(idx >= args.n_train) & (idx < args.n_train + args.n_test)]
    model = DensityModel(n_sparse=args.n_sparse, max_radial=6, max_angular=4, n_features=500, cg_tol=1e-6,
                         regularization=args.regularization, solver="cg").fit(ds, train)
    return model, {int(i): ds.atoms(int(i)) for i in test}, {int(i): ds.coefficients(int(i)) for i in test}, ds


if __name__ == "__main__":
    main()
