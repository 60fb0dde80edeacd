"""Prediction speed per atom: water clusters of 32 and 1000 molecules, the scaling benchmark's model.

The model (demo settings, trained on 40 distorted water molecules, PBE/def2-SVP references cached in
benchmarks/cache) predicts clusters cut from a liquid-water cell; best of three runs, one OpenMP thread
unless OMP_NUM_THREADS says otherwise. The numbers of the numpy predictor this replaced (commit ea6d823,
same machine, one thread) are quoted in the text.

    python benchmarks/prediction.py
"""
from __future__ import annotations

import os
import time

from _record import markdown_table, record
from _water import cluster, monomer_model_and_cell
from rhocast.demo import MODEL
NUMPY_MS_PER_ATOM = {32: 1.173, 1000: 1.237}  # the numpy predictor at ea6d823, this machine, 1 thread


def main() -> None:
    model, cell = monomer_model_and_cell()
    rows = []
    for n in (32, 1000):
        atoms = cluster(cell, n)
        model.predict(atoms)  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model.predict(atoms)
            times.append(time.perf_counter() - t)
        ms = 1e3 * min(times) / len(atoms)
        old = NUMPY_MS_PER_ATOM[n]
        rows.append([n, len(atoms), min(times), ms, old if old else "-", old / ms if old else "-"])
        print(rows[-1], flush=True)
    record("Prediction speed: C++ predictor against the numpy path",
           f"Model: {MODEL} (n_features={model.n_features}), trained on 40 distorted water molecules "
           f"(PBE/def2-SVP); OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Time of "
           "DensityModel.predict (features, kernels, projection, assembly), best of 3.\n\n"
           + markdown_table(["molecules", "atoms", "predict (s)", "ms/atom", "numpy path ms/atom (ea6d823)",
                             "speed-up"], rows))


if __name__ == "__main__":
    main()
