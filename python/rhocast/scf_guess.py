"""An SCF initial guess from a predicted density: one Kohn-Sham step, then a Newton step in the
auxiliary basis (:mod:`rhocast.response`), and the density matrix of the result."""
from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from ase.units import Bohr


def atoms_from_mol(mol) -> Atoms:
    """The ase.Atoms (Angstrom) of a PySCF Mole, with its charge and spin in ``info``."""
    atoms = Atoms([mol.atom_pure_symbol(i) for i in range(mol.natm)], positions=mol.atom_coords() * Bohr)
    atoms.info.update(charge=mol.charge, spin=mol.spin)
    return atoms


def guess_from_density(mf, coefficients: np.ndarray, auxbasis: str, newton: bool = True,
                       max_memory_mb: float = 2000.0) -> np.ndarray:
    """``dm0`` for ``mf`` from a density given by auxiliary-basis ``coefficients`` (canonical order).

    The density is corrected to the exact electron count, one Kohn-Sham step with ``mf``'s own orbital
    basis, functional and grid level gives orbitals, and (``newton``, closed shells) the linear-response
    Newton step of :func:`rhocast.response.newton_density_matrix` moves them towards self-consistency
    (three-centre integrals and a coarse-grid xc kernel; SCF cycles with and without it on held-out QM9
    molecules: benchmarks/RESULTS.md). The step is skipped with a warning when its memory would exceed
    ``max_memory_mb``. One :class:`rhocast.integrals.IntegralContext` serves the step and the Newton
    step (the auxiliary molecule, three-centre integrals and metric are built once), and the step runs
    on ``mf.grids`` (built here if needed), which the SCF then reuses. Returns shape (nao, nao), or
    (2, nao, nao) for unrestricted ``mf``.
    """
    from rhocast.basis import from_canonical
    from rhocast.integrals import IntegralContext
    from rhocast.kohn_sham import input_density, kohn_sham_step
    from rhocast.response import newton_density_matrix, response_memory_mb

    atoms = atoms_from_mol(mf.mol)
    _, auxmol, coefficients = input_density(atoms, mf.mol, auxbasis, coefficients, renormalize=True)
    context = IntegralContext(mf.mol, auxmol, max_memory_mb)
    grids = getattr(mf, "grids", None)
    level = getattr(grids, "level", 3)
    context.grids(level, grids)
    result = kohn_sham_step(atoms, coefficients, basis=mf.mol.basis, auxbasis=auxbasis, xc=getattr(mf, "xc", "pbe"),
                            grid_level=level, renormalize=False, output_energies=False, context=context)
    dm = result.dm
    if newton and mf.mol.spin == 0:
        need = response_memory_mb(mf.mol, auxmol)
        if need <= max_memory_mb:
            dm = newton_density_matrix(mf.mol, auxmol, from_canonical(auxmol, coefficients), result.mo_energy,
                                       result.mo_coeff, context=context)
        else:
            warnings.warn(f"Newton step skipped: it needs {need:.0f} MB (max_memory_mb={max_memory_mb:g})")
    if dm.ndim == 2 and getattr(mf, "istype", None) and mf.istype("UHF"):
        dm = np.array([dm / 2, dm / 2])
    return dm


def scf_guess(mf, model, newton: bool = True, max_memory_mb: float = 2000.0) -> np.ndarray:
    """``dm0`` for ``mf.kernel(dm0=...)`` from ``model`` (anything with ``predict(atoms)`` and ``auxbasis_``):
    :func:`guess_from_density` of the predicted density."""
    coefficients = model.predict(atoms_from_mol(mf.mol))
    return guess_from_density(mf, coefficients, model.auxbasis_.spec, newton, max_memory_mb)
