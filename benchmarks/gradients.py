"""Position gradients: time and memory of d c / d R and of the atomic polar tensors, water clusters of 32
and 128 molecules and the periodic 32-molecule cell they are cut from.

Model: the small test model tests/data/model_v1.h5 (cutoff 3.5 Angstrom, max_radial 4, max_angular 3,
30 feature columns per lambda, 6 sparse environments per species, zeta 2), so that the run stays small;
one OpenMP thread unless OMP_NUM_THREADS says otherwise. d c / d R is stored by (atom, neighbour) blocks,
so its memory per atom is n_coef(atom) x 3 x (neighbours + 1) x 8 bytes and does not grow with the system.

    python benchmarks/gradients.py
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from _record import best_of, markdown_table, record
from _water import cluster
from rhocast import sources
from rhocast.gradients import coefficient_gradients, dipole_derivatives
from rhocast.model import DensityModel

MODEL = Path(__file__).parents[1] / "tests" / "data" / "model_v1.h5"


def main() -> None:
    model = DensityModel.load(MODEL)
    cell = sources.liquid_water(1, n_molecules=32, seed=0, equilibration_ps=0.2)[0]
    rows = []
    for name, atoms in [("cluster", cluster(cell, 32)), ("cluster", cluster(cell, 128)), ("cell", cell)]:
        model.predict(atoms)  # warm-up
        t_predict = best_of(lambda: model.predict(atoms), 3)
        t_grad = best_of(lambda: coefficient_gradients(model, atoms), 3)
        grads = coefficient_gradients(model, atoms)
        mb = sum(b.nbytes for b in grads.blocks) / 1e6
        neighbours = np.mean([len(n) - 1 for n in grads.neighbors])
        small_molecule = not atoms.pbc.any() and len(atoms) <= 96
        t_apt = best_of(lambda: dipole_derivatives(model, atoms), 1) if small_molecule else float("nan")
        rows.append([name, len(atoms) // 3, len(atoms), t_predict, t_grad, t_grad / t_predict, t_apt,
                     neighbours, mb, 1e3 * mb / len(atoms)])
        print(rows[-1], flush=True)
    record("Position gradients: d c / d R and atomic polar tensors",
           f"Model: tests/data/model_v1.h5 (6 distorted waters, STO-3G references; cutoff 3.5 Angstrom, "
           f"max_radial 4, max_angular 3, 30 columns per lambda, zeta 2); water clusters cut from a 32-molecule "
           f"TIP3P liquid cell (sources.liquid_water, seed 0, 0.2 ps equilibration) and the cell itself; "
           f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; load average "
           f"{os.getloadavg()[0]:.1f} at the end (shared 2-core machine). predict and d c / d R "
           "(rhocast.gradients.coefficient_gradients, analytic) best of 3; APT (dipole_derivatives: d c / d R, "
           "the overlap and its gradient for the electron-count correction) one run, 32-molecule cluster only. "
           "Memory: the (atom, neighbour) blocks of d c / d R.\n\n"
           + markdown_table(["system", "molecules", "atoms", "predict (s)", "d c / d R (s)", "ratio",
                             "APT (s)", "neighbours per atom", "d c / d R (MB)", "kB per atom"], rows))


if __name__ == "__main__":
    main()
