"""Reference cost and fitting floor: 10 QM9 molecules and 10 water monomers, three auxiliary bases.

The SCF (PBE/def2-SVP at the defaults of ``rhocast reference``) runs once per structure; its density
is then fitted onto each auxiliary basis in the Coulomb metric. Appends a table to RESULTS.md.

    python benchmarks/references.py [--n 10] [--grid-level 3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _record import markdown_table, record
from rhocast import sources
from rhocast.basis import AuxiliaryBasis
from rhocast.density_fitting import fit_density
from rhocast.references import ReferenceSettings, fitting_floor, run_scf
from rhocast.structures import read_structures

AUXBASES = ("def2-universal-jkfit", "def2-universal-jfit", "cc-pvdz-jkfit")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "water_monomers_1k.xyz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--grid-level", type=int, default=3)
    args = p.parse_args()
    sets = {"QM9": sources.qm9(args.n, seed=0)}
    if SHARED.exists():
        sets["water monomers"] = read_structures(SHARED)[: args.n]
    rows = []
    for name, structures in sets.items():
        per = {aux: [] for aux in AUXBASES}
        times, iters = [], []
        for atoms in structures:
            settings = ReferenceSettings(grid_level=args.grid_level).resolved()
            t0 = time.perf_counter()
            mf, n_iter = run_scf(atoms, settings)
            times.append(time.perf_counter() - t0)
            iters.append(n_iter)
            dm = mf.make_rdm1()
            for aux in AUXBASES:
                auxmol = AuxiliaryBasis(aux, set(atoms.numbers)).make_auxmol(mf.mol)
                t1 = time.perf_counter()
                c = fit_density(mf.mol, auxmol, dm, "coulomb")
                fit_time = time.perf_counter() - t1
                f = fitting_floor(mf, auxmol, c)
                per[aux].append((auxmol.nao, f["relative_l2"], f["nmae"], f["n_electrons_fit"] - mf.mol.nelectron,
                                 fit_time))
            print(f"{name} {atoms.get_chemical_formula()}: SCF {times[-1]:.1f} s, {n_iter} cycles", flush=True)
        for aux in AUXBASES:
            a = np.array(per[aux])
            rows.append([name, len(structures), aux, f"{a[:, 0].mean():.0f}", float(np.mean(times)),
                         float(np.mean(iters)), float(a[:, 4].mean()), float(a[:, 1].mean()), float(a[:, 2].mean()),
                         float(np.abs(a[:, 3]).max())])
    table = markdown_table(["set", "n", "auxiliary basis", "aux functions", "SCF time / structure (s)",
                            "SCF cycles", "fit time (s)", "floor rel. L2 (%)", "floor NMAE (%)",
                            "max |N_fit - N|"], rows)
    record("References: SCF cost and fitting floor (PBE/def2-SVP, Coulomb-metric fit)",
           f"Grid level {args.grid_level}, conv_tol 1e-9. The floor is measured on the SCF's DFT grid.\n\n" + table)


if __name__ == "__main__":
    main()
