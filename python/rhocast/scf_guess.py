"""An SCF initial guess from a predicted density: predict, one Kohn-Sham step, its density matrix."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.units import Bohr


def atoms_from_mol(mol) -> Atoms:
    """The ase.Atoms (Angstrom) of a PySCF Mole, with its charge and spin in ``info``."""
    atoms = Atoms([mol.atom_pure_symbol(i) for i in range(mol.natm)], positions=mol.atom_coords() * Bohr)
    atoms.info.update(charge=mol.charge, spin=mol.spin)
    return atoms


def scf_guess(mf, model) -> np.ndarray:
    """``dm0`` for ``mf.kernel(dm0=...)`` from ``model`` (anything with ``predict(atoms)`` and ``auxbasis_``).

    The Kohn-Sham step uses ``mf``'s own orbital basis, functional and grid level, so the guess is
    a density matrix of exactly that calculation (shape (2, nao, nao) for UKS).
    """
    from rhocast.kohn_sham import kohn_sham_step

    atoms = atoms_from_mol(mf.mol)
    coefficients = model.predict(atoms)
    result = kohn_sham_step(atoms, coefficients, basis=mf.mol.basis, auxbasis=model.auxbasis_.spec,
                            xc=getattr(mf, "xc", "pbe"), grid_level=getattr(getattr(mf, "grids", None), "level", 3),
                            output_energies=False)
    dm = result.dm
    if dm.ndim == 2 and getattr(mf, "istype", None) and mf.istype("UHF"):
        dm = np.array([dm / 2, dm / 2])
    return dm
