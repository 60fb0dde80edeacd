"""Cost of the Kohn-Sham step and of the SCF guess by stage, as a fraction of the SCF they stand in for.

For each molecule (QM9 molecules with 9 heavy atoms from ../shared/data/qm9_test_150.xyz, water clusters),
PBE/def2-SVP, def2-universal-jkfit, grid level 3, in one run at the same settings: the PySCF SCF from minao
(wall time, cycles), the Kohn-Sham step with the output-density energy (exact four-centre path and the
fitted-Hartree path, and that path with the opt-in coarse output-energy grid), and the SCF guess
(step + Newton). The input density is the Coulomb fit of the minao density (a stand-in for a prediction:
the cost does not depend on the density; the model's own prediction time is not included). Stages: grid, collocation (compiled core: the input density on the step's grid,
the auxiliary functions of the Newton kernel), xc (the whole xc pass of the input density, its
collocation included: orbitals on the grid, eval_xc_eff, V_xc matrix), J (three-centre integrals and
contraction), diagonalisation, output energy (Hartree and xc energies of the output density), Newton.

    python benchmarks/kohn_sham.py [--n-qm9 2] [--waters 8 16] [--qm9 ../shared/data/qm9_test_150.xyz]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import scipy.linalg
from ase.io import read

from _record import markdown_table, record
from rhocast import kohn_sham, response, sources
from rhocast.integrals import IntegralContext
from rhocast.references import ReferenceSettings, make_scf
from rhocast.scf_guess import guess_from_density

QM9 = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm9_test_150.xyz"  # as benchmarks/qm9.py
SETTINGS = ReferenceSettings(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=3,
                             conv_tol=1e-8).resolved()
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
COARSE_OUTPUT_LEVEL = 1  # the opt-in output-energy grid (kohn_sham_step's output_grid_level)
STAGES = ("grid", "collocation", "xc", "J", "diagonalisation", "output energy", "Newton")


def timed_stages(run):
    """Wall time of ``run()``, of its stages (s), by wrapping the functions that do them, its result and
    its CPU time (s; one thread, so the CPU time is what the other jobs on the machine cannot stretch)."""
    times = defaultdict(float)

    def wrap(owner, name, stage):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[stage] += time.perf_counter() - t0
        return mock.patch.object(owner, name, timed)

    with ExitStack() as stack:
        for owner, name, stage in ((IntegralContext, "grids", "grid"),
                                   (IntegralContext, "aux_functions", "collocation"),
                                   (IntegralContext, "aux_density", "collocation"),
                                   (kohn_sham, "_xc_on_grid", "xc"), (kohn_sham, "contract_coefficients", "J"),
                                   (scipy.linalg, "eigh", "diagonalisation"),
                                   (kohn_sham, "_output_hartree", "output energy"),
                                   (kohn_sham, "_output_xc", "output energy"),
                                   (response, "newton_density_matrix", "Newton")):
            stack.enter_context(wrap(owner, name, stage))
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    return total, dict(times), result, cpu


def measure(name: str, atoms) -> dict:
    from rhocast.density_fitting import fit_density

    mf = make_scf(atoms, SETTINGS)
    context = IntegralContext.of(mf.mol, SETTINGS.auxbasis)
    c = fit_density(mf.mol, context.auxmol, mf.get_init_guess(key="minao"), context=context)
    step = dict(basis=SETTINGS.basis, auxbasis=SETTINGS.auxbasis, xc=SETTINGS.xc, grid_level=SETTINGS.grid_level)
    out = {"name": name, "atoms": len(atoms), "nao": mf.mol.nao, "naux": context.auxmol.nao}
    out["exact"] = timed_stages(lambda: kohn_sham.kohn_sham_step(atoms, c, **step))
    out["fitted"] = timed_stages(lambda: kohn_sham.kohn_sham_step(atoms, c, **step, fitted_hartree=True))
    out["coarse"] = timed_stages(lambda: kohn_sham.kohn_sham_step(atoms, c, **step, fitted_hartree=True,
                                                                   output_grid_level=COARSE_OUTPUT_LEVEL))
    guess = make_scf(atoms, SETTINGS)
    out["guess"] = timed_stages(lambda: guess_from_density(guess, c, SETTINGS.auxbasis))
    cycles = []
    mf.callback = lambda env: cycles.append(env["cycle"])
    t0, c0 = time.perf_counter(), time.process_time()
    mf.kernel()
    out["scf"], out["scf_cpu"], out["cycles"] = time.perf_counter() - t0, time.process_time() - c0, len(cycles)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-qm9", type=int, default=2, help="QM9 molecules with 9 heavy atoms")
    parser.add_argument("--qm9", type=Path, default=QM9, help="QM9 geometries (extended xyz)")
    parser.add_argument("--waters", type=int, nargs="*", default=[8], help="water cluster sizes")
    args = parser.parse_args()
    if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):
        # one thread for the SCF and the step alike (the fractions compare like with like), set before
        # numpy and PySCF start their thread pools: the script restarts itself with it
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **ONE_THREAD})
    molecules = [a for a in read(args.qm9, ":") if (a.numbers > 1).sum() == 9][:args.n_qm9]
    systems = [(f"QM9 {a.info.get('qm9_index')} ({a.get_chemical_formula()})", a) for a in molecules]
    systems += [(f"(H2O){n}", sources.water_clusters(1, n_molecules=n, seed=0, equilibration_ps=0.1)[0])
                for n in args.waters]
    results, load = [], [os.getloadavg()[0]]
    for name, atoms in systems:
        results.append(measure(name, atoms))
        r = results[-1]
        print(name, {k: (v[0] if isinstance(v, tuple) else v) for k, v in r.items()}, flush=True)
        load.append(os.getloadavg()[0])
    header = ["system", "atoms", "nao", "naux", "SCF (s)", "cycles", "run", "total (s)", "/ SCF", "/ cycle",
              "CPU / SCF CPU"]
    header += list(STAGES) + ["E - E exact (Ha)"]
    rows = []
    for r in results:
        per_cycle = r["scf"] / r["cycles"]
        for run in ("exact", "fitted", "coarse", "guess"):
            total, stages, result, cpu = r[run]
            label = {"exact": "step + exact output energy", "fitted": "step + fitted-Hartree output energy",
                     "coarse": f"as fitted, output xc on grid level {COARSE_OUTPUT_LEVEL} (opt-in)",
                     "guess": "SCF guess (step + Newton)"}[run]
            rows.append([r["name"], r["atoms"], r["nao"], r["naux"], r["scf"], r["cycles"], label, total,
                         total / r["scf"], total / per_cycle, cpu / r["scf_cpu"]] + [stages.get(s, 0.0) for s in STAGES]
                        + [result.total_energy - r["exact"][2].total_energy if run in ("fitted", "coarse") else ""])
    body = ("PBE/def2-SVP, def2-universal-jkfit, grid level 3, conv_tol 1e-8, one thread "
            "(OMP_NUM_THREADS=1). Input density: the Coulomb fit of minao (prediction time not included). "
            "'/ SCF': fraction of the SCF wall time from minao; '/ cycle': in SCF cycles (SCF time / cycles); "
            "'CPU / SCF CPU': the same fraction in CPU time (one thread: what the other jobs cannot stretch). "
            "Stage times in s; 'xc' includes the step's collocation, 'Newton' its coarse-grid collocation "
            "(both also counted under 'collocation'). 'E - E exact': KS energy of the output density with the "
            "fitted Hartree energy minus the exact one (the fitted path's approximation; with the opt-in coarse "
            "output grid, both approximations). "
            f"Load average (1 min) {min(load):.1f}-{max(load):.1f} during the run.\n\n" + markdown_table(header, rows))
    record("Kohn-Sham step and SCF guess by stage (issue 19)", body)


if __name__ == "__main__":
    main()
