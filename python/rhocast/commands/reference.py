"""``rhocast reference IN -o OUT.h5``: DFT references and their density fit (resumable)."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "reference", help="compute DFT reference densities with PySCF (resumable)",
        description="Runs PySCF (RKS, or UKS when atoms.info['spin'] != 0) on every structure of IN "
                    "(any file ase.io.read reads) and fits the density onto an auxiliary basis. "
                    "Periodic cells (pbc in all three directions) get Gamma-point DFT with pyscf.pbc. "
                    "Rerunning the same command resumes: finished structures are skipped.")
    p.add_argument("input", help="structure file (xyz, extxyz, ... anything ase.io.read reads)")
    p.add_argument("-o", "--output", required=True, help="output HDF5 dataset")
    p.add_argument("--xc", default="pbe", help="exchange-correlation functional (default: pbe)")
    p.add_argument("--basis", default=None, help="orbital basis (default: def2-svp; cells: gth-dzvp)")
    p.add_argument("--auxbasis", default=None,
                   help="auxiliary basis for the density (default: PySCF's JK-fit partner of --basis; "
                        "cells: etb:BASIS, the even-tempered basis derived from it)")
    p.add_argument("--metric", choices=["coulomb", "overlap"], default=None,
                   help="metric of the density fit (default: coulomb; cells: overlap, the only one)")
    p.add_argument("--grid-level", type=int, default=None, help="PySCF DFT grid level, molecules (default: 3)")
    p.add_argument("--pseudo", default=None, help="cells: pseudopotential (default: gth-XC with a GTH basis)")
    p.add_argument("--ke-cutoff", type=float, default=None,
                   help="cells: kinetic-energy cutoff of the uniform grid in Hartree (default: 200)")
    p.add_argument("--pbc-scheme", choices=["multigrid", "fftdf", "gdf"], default=None,
                   help="cells: PySCF's Coulomb/XC scheme in the SCF (default: multigrid, the fastest here)")
    p.add_argument("--conv-tol", type=float, default=1e-9, help="SCF energy convergence (default: 1e-9)")
    p.add_argument("--max-cycle", type=int, default=100, help="maximum SCF cycles (default: 100)")
    p.add_argument("--density-fit", action="store_true", help="density-fitted J/K in the SCF itself")
    p.add_argument("--constrain-electrons", action="store_true",
                   help="constrain the fitted density to the exact electron count")
    p.add_argument("--charge", type=int, default=None,
                   help="total charge of every structure (default: atoms.info['charge'] of each, else 0)")
    p.add_argument("--spin", type=int, default=None,
                   help="2S, the number of unpaired electrons, of every structure (default: "
                        "atoms.info['spin'] of each, else 0)")
    p.add_argument("--guess-model", default=None,
                   help="start each molecule's SCF from this model's predicted density (a model file or the "
                        "name of a shipped model): fewer SCF cycles, the same references (default: minao)")
    p.add_argument("-j", "--workers", type=int, default=1, help="worker processes (default: 1)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from rhocast.parallel import world
    from rhocast.references import compute_references
    from rhocast.structures import read_structures, set_charge_and_spin

    structures = read_structures(args.input)
    set_charge_and_spin(structures, args.charge, args.spin)
    summary = compute_references(
        structures, args.output, xc=args.xc, basis=args.basis, auxbasis=args.auxbasis, metric=args.metric,
        grid_level=args.grid_level, conv_tol=args.conv_tol, max_cycle=args.max_cycle,
        density_fit_scf=args.density_fit, constrain_electrons=args.constrain_electrons, pseudo=args.pseudo,
        ke_cutoff=args.ke_cutoff, pbc_scheme=args.pbc_scheme, n_workers=args.workers,
        guess_model=args.guess_model, comm=(comm := world()))
    if comm.rank != 0:  # under mpirun rank 0 reports for all ranks
        return 0
    print(summary)
    return 1 if summary.failed else 0
