"""Effective core potentials of molecular orbital bases: which elements have one, and their core electrons.

An orbital basis built for an ECP (def2 beyond Kr, lanl2dz, cc-pVXZ-PP) describes only the valence
electrons; PySCF applies the ECP only when asked (``Mole.ecp``). rhocast asks whenever PySCF knows an
ECP by the orbital basis's own name for an element (``mol.ecp = {element: basis name}``), so a def2
basis is always used with the def2 ECPs it was optimised for. Everything downstream is then valence
only: ``mol.nelectron`` and the fitted density count Z - n_core electrons per atom, the nuclei enter the
dipole and the nuclear repulsion with the effective charges Z - n_core (``mol.atom_charges()``), and the
one-electron Hamiltonian includes ``mol.intor("ECPscalar")`` (:func:`rhocast.integrals.nuclear_attraction`).
Periodic cells use GTH pseudopotentials through ``pyscf.pbc`` instead (:mod:`rhocast.pbc`); their valence
charges come from :func:`nuclear_charges` with ``pseudo``.
"""
from __future__ import annotations

import functools
from typing import Iterable, Optional, Union

import numpy as np

# def2 bases beyond Kr (Z = 37 on) are defined only together with an ECP; one PySCF lacks is refused.
LAST_ALL_ELECTRON_DEF2 = 36


@functools.lru_cache(maxsize=None)
def _core_electrons_of(name: str, symbol: str) -> int:
    """Core electrons of PySCF's ECP called ``name`` for element ``symbol``; 0 when it has none."""
    from pyscf import gto

    try:
        ecp = gto.basis.load_ecp(name, symbol)
    except Exception:  # noqa: BLE001 - PySCF raises several types for a name without any ECP file
        return 0
    return int(ecp[0]) if ecp else 0


def _basis_name(basis, symbol: str) -> Optional[str]:
    """The basis name of ``symbol`` in an orbital ``basis`` (a name, or a dict element -> name or
    shells); None for explicit shells (which come without an ECP)."""
    spec = basis.get(symbol) if isinstance(basis, dict) else basis
    return spec if isinstance(spec, str) else None


def ecp_of(basis, symbols: Iterable[str]) -> dict[str, str]:
    """``Mole.ecp`` for an orbital ``basis`` and the elements ``symbols``: element -> ECP name for the
    elements for which PySCF knows an ECP named as their basis (empty for an all-electron basis).

    Raises ValueError for a def2 basis of an element beyond Kr that has no such ECP in PySCF (the
    basis would describe core electrons it was not made for), naming the element."""
    from ase.data import atomic_numbers

    out = {}
    for s in sorted(set(symbols)):
        name = _basis_name(basis, s)
        if name is None:
            continue
        if _core_electrons_of(name, s):
            out[s] = name
        elif (atomic_numbers.get(s, 0) > LAST_ALL_ELECTRON_DEF2
              and name.lower().replace("-", "").replace("_", "").startswith("def2")):
            raise ValueError(f"element {s} (Z = {atomic_numbers[s]}) with basis {name!r}: def2 bases beyond Kr "
                             "are defined with an effective core potential, and PySCF has none of that name "
                             f"for {s}; use a basis PySCF has an ECP for (e.g. 'lanl2dz') or an all-electron "
                             f"basis for {s} (e.g. 'dzp-dkh', 'ano-rcc'; a dict gives one basis per element)")
    return out


def core_electrons(numbers: Iterable[Union[int, np.integer]], basis) -> np.ndarray:
    """Electrons replaced by the ECP of the orbital ``basis`` (name or dict), per atom (n_atoms,) int:
    28 for iodine with def2-svp, 0 for every atom of an all-electron basis."""
    from ase.data import chemical_symbols

    numbers = [int(z) for z in numbers]
    names = {z: _basis_name(basis, chemical_symbols[z]) for z in set(numbers)}
    n_core = {z: 0 if name is None else _core_electrons_of(name, chemical_symbols[z]) for z, name in names.items()}
    return np.array([n_core[z] for z in numbers], dtype=int)


@functools.lru_cache(maxsize=None)
def _pseudo_valence_of(name: str, symbol: str) -> int:
    """Valence electrons of the GTH pseudopotential ``name`` (e.g. 'gth-pbe') of element ``symbol``."""
    from pyscf.pbc.gto import pseudo

    return int(sum(pseudo.load(name, symbol)[0]))


def nuclear_charges(numbers: Iterable[Union[int, np.integer]], basis=None, pseudo: Optional[str] = None) -> np.ndarray:
    """The charges (e) of the nuclei as the density of orbital ``basis`` sees them, per atom (n_atoms,)
    float: Z - :func:`core_electrons` (PySCF's ``mol.atom_charges()``), Z when ``basis`` is None; with a
    cell's GTH ``pseudo`` (name), its ionic charges (6 for O with gth-pbe): the valence density a cell's
    reference fits."""
    from ase.data import chemical_symbols

    numbers = np.asarray(list(numbers), dtype=int)
    if pseudo is not None:
        return np.array([_pseudo_valence_of(pseudo, chemical_symbols[z]) for z in numbers], dtype=float)
    if basis is None:
        return numbers.astype(float)
    return (numbers - core_electrons(numbers, basis)).astype(float)
