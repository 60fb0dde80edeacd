"""Prediction speed per atom: water clusters of 32 and 1000 molecules, the scaling benchmark's model
with all feature columns and with 300 per lambda.

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
    rows = []
    for n_features in (None, 300):
        model, cell = monomer_model_and_cell(n_features=n_features)
        for n in (32, 1000):
            atoms = cluster(cell, n)
            model.predict(atoms)  # warm-up
            times, cpu = [], []
            for _ in range(3):
                t, c = time.perf_counter(), time.process_time()
                model.predict(atoms)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            ms = 1e3 * min(times) / len(atoms)
            old = NUMPY_MS_PER_ATOM[n]
            rows.append([str(n_features), n, len(atoms), min(times), ms, 1e3 * min(cpu) / len(atoms), old, old / ms])
            print(rows[-1], flush=True)
    record("Prediction speed: C++ predictor against the numpy path",
           f"Model: {MODEL}, trained on 40 distorted water molecules (PBE/def2-SVP), all feature columns "
           f"(n_features=None) or 300 per lambda; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
           f"load average {os.getloadavg()[0]:.1f} at the end of the run (shared 2-core machine). Time of "
           "DensityModel.predict (features, kernels, projection, assembly), best of 3; 'CPU ms/atom': process "
           "CPU time (one thread: what the load on the machine does not inflate). The numpy path "
           "(ea6d823, all columns) was measured on this machine with one thread (wall time); 'speed-up' is "
           "against it, wall over wall.\n\n"
           + markdown_table(["n_features", "molecules", "atoms", "predict (s)", "ms/atom", "CPU ms/atom",
                             "numpy path ms/atom (ea6d823)", "speed-up"], rows))

if __name__ == "__main__":
    main()
