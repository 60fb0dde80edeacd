"""Structures in (ase.Atoms, Angstrom): reading, validation and conversion to PySCF.

Charge and spin (2S, the number of unpaired electrons, PySCF's convention) are read from
``atoms.info["charge"]`` and ``atoms.info["spin"]``, default 0 and 0.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
from ase import Atoms

StructureSource = Union[str, Path, Atoms, Sequence[Atoms]]

MIN_DISTANCE = 0.1  # Angstrom: closer atoms are an input error, not chemistry


class StructureError(ValueError):
    """A structure that cannot be computed; the message names the structure and the problem."""


def read_structures(source: StructureSource) -> list[Atoms]:
    """A list of ase.Atoms from a file (any format ``ase.io.read(path, ":")`` reads), an Atoms or a list."""
    if isinstance(source, Atoms):
        return [source]
    if isinstance(source, (str, Path)):
        import ase.io

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no structure file {path}")
        try:
            structures = ase.io.read(path, ":")
        except KeyError as err:  # ase's symbol lookup: the only KeyError a structure file gives
            raise ValueError(f"cannot read structures from {path}: unknown element symbol {err.args[0]!r} "
                             "(symbols are case-sensitive: H, He, ..., Og)") from err
        except Exception as err:  # ase raises many types for a bad file
            raise ValueError(f"cannot read structures from {path}: {err}") from err
        if not structures:
            raise ValueError(f"{path} holds no structures")
        return list(structures)
    structures = list(source)
    for k, a in enumerate(structures):
        if not isinstance(a, Atoms):
            raise TypeError(f"structure {k} is a {type(a).__name__}, not an ase.Atoms")
    return structures


def charge_and_spin(atoms: Atoms) -> tuple[int, int]:
    """(charge, 2S) from ``atoms.info``, default (0, 0).

    Only integers are accepted: ASE reads a bare word ``charge`` in an extxyz comment line as True, and
    ``charge=1.0`` as a float; either would otherwise become a charge silently (an OH radical computed
    as OH+). Raises :class:`StructureError` naming the key and the value.
    """
    return _integer_info(atoms, "charge"), _integer_info(atoms, "spin")


def _integer_info(atoms: Atoms, key: str) -> int:
    value = atoms.info.get(key, 0)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise StructureError(f"{describe(atoms)}: info[{key!r}] = {value!r} is not an integer "
                             f"(write {key}=<integer> in the extxyz comment line, e.g. {key}=0)")
    return int(value)


def set_charge_and_spin(structures: Sequence[Atoms], charge: Optional[int] = None,
                        spin: Optional[int] = None) -> None:
    """Give every structure this ``charge`` and/or ``spin`` (2S) in ``atoms.info`` (in place); None keeps
    what the structure says. Used by ``rhocast reference --charge/--spin``."""
    for name, value in (("charge", charge), ("spin", spin)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise StructureError(f"{name} must be an integer, not {value!r}")
        for a in structures:
            a.info[name] = int(value)


def describe(atoms: Atoms, index: Optional[int] = None) -> str:
    """'structure 3 (H2O)' for error messages."""
    name = atoms.get_chemical_formula()
    return f"structure {index} ({name})" if index is not None else f"structure {name}"


def validate_structure(atoms: Atoms, index: Optional[int] = None, *, basis: Optional[object] = None,
                       auxbasis: Optional[object] = None, pseudo: Optional[str] = None) -> None:
    """Raise :class:`StructureError` if ``atoms`` cannot be computed.

    Checks: known elements, finite coordinates, no two atoms closer than 0.1 Angstrom (minimum image
    in periodic cells), a charge and spin consistent with the electron count, and, when given, that
    the orbital ``basis`` (PySCF name or dict), ``auxbasis`` and ``pseudo`` (a pyscf.pbc
    pseudopotential name) cover every element.
    """
    who = describe(atoms, index)
    numbers = atoms.numbers
    if len(numbers) == 0:
        raise StructureError(f"{who}: no atoms")
    if np.any(numbers <= 0) or np.any(numbers > 118):
        bad = sorted(set(atoms.get_chemical_symbols()[k] for k in np.where((numbers <= 0) | (numbers > 118))[0]))
        raise StructureError(f"{who}: unknown element(s) {bad}")
    pos = atoms.positions
    if not np.all(np.isfinite(pos)) or (atoms.pbc.any() and not np.all(np.isfinite(atoms.cell.array))):
        raise StructureError(f"{who}: coordinates contain NaN or infinity")
    if len(atoms) > 1:
        d = _closest_pair(atoms)
        if d < MIN_DISTANCE:
            raise StructureError(f"{who}: two atoms are {d:.3g} Angstrom apart (minimum {MIN_DISTANCE})")
    try:
        charge, spin = charge_and_spin(atoms)
    except StructureError as err:
        raise StructureError(str(err).replace(describe(atoms), who, 1)) from None
    symbols = sorted(set(atoms.get_chemical_symbols()))
    n_core = 0
    if basis is not None:
        _check_orbital_basis(basis, symbols, who)
        if not atoms.pbc.any():  # cells use pseudopotentials (pyscf.pbc); molecules the basis's ECP, if any
            from rhocast.ecp import core_electrons, ecp_of

            try:
                ecp_of(basis, symbols)
            except ValueError as err:
                raise StructureError(f"{who}: {err}") from None
            n_core = int(core_electrons(numbers, basis).sum())
    n_electrons = int(numbers.sum()) - n_core - charge
    if n_electrons <= 0:
        raise StructureError(f"{who}: charge {charge} leaves {n_electrons} electrons")
    if spin < 0 or spin > n_electrons or (n_electrons - spin) % 2:
        valence = f" outside the ECP cores ({n_core} in them)" if n_core else ""
        raise StructureError(f"{who}: {n_electrons} electrons{valence} cannot have spin 2S={spin} "
                             f"(set atoms.info['spin'] to the number of unpaired electrons)")
    if pseudo is not None:
        from pyscf.pbc.gto.pseudo import load

        for symbol in symbols:
            try:
                load(pseudo, symbol)
            except Exception:  # PySCF raises several types for an unknown name or element
                raise StructureError(f"{who}: pseudopotential {pseudo!r} has no parameters for {symbol}") from None
    if auxbasis is not None:
        from rhocast.basis import AuxiliaryBasis

        try:
            AuxiliaryBasis(auxbasis if not isinstance(auxbasis, AuxiliaryBasis) else auxbasis.spec, symbols)
        except ValueError as err:
            raise StructureError(f"{who}: {err}") from err


def _closest_pair(atoms: Atoms) -> float:
    if atoms.pbc.any():
        from ase.geometry import get_distances

        _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        d[np.diag_indices_from(d)] = np.inf
        return float(d.min())
    from scipy.spatial import cKDTree

    d, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
    return float(d[:, 1].min())


def check_basis_name(name, symbols: Iterable[str], kind: str = "orbital") -> None:
    """Raise ValueError when PySCF knows basis ``name`` for none of ``symbols``: a misspelt name, not a
    missing element (that is reported per structure, naming the element). A dict (element -> name or
    explicit shells) has each of its names checked for its element."""
    from pyscf import gto

    if isinstance(name, dict):
        for element, spec in name.items():
            if isinstance(spec, str):
                check_basis_name(spec, [element], kind)
        return
    if name.startswith("etb:"):  # an even-tempered basis derived from the orbital basis named after it
        return check_basis_name(name[4:], symbols, "orbital")
    symbols = sorted(set(symbols))
    for s in symbols:
        try:
            if gto.basis.load(name, s):
                return
        except Exception:  # noqa: BLE001 - PySCF raises several types for an unknown name
            continue
    raise ValueError(f"unknown {kind} basis {name!r}: PySCF has no basis of that name for any of "
                     f"{', '.join(symbols)} (names as in pyscf/gto/basis, e.g. def2-svp, cc-pvdz, or a file)")


def _check_orbital_basis(basis, symbols: Iterable[str], who: str) -> None:
    from pyscf import gto

    for s in symbols:
        spec = basis.get(s) if isinstance(basis, dict) else basis
        try:
            shells = gto.basis.load(spec, s) if isinstance(spec, str) else spec
        except Exception:
            shells = None
        if not shells:
            raise StructureError(f"{who}: orbital basis {spec!r} has no functions for {s}")


def structure_hash(atoms: Atoms) -> str:
    """A fingerprint of numbers, positions (to 1e-8 Angstrom), cell, pbc, charge and spin."""
    h = hashlib.sha256()
    h.update(atoms.numbers.astype(np.int64).tobytes())
    h.update(np.round(atoms.positions, 8).tobytes())
    h.update(np.round(atoms.cell.array, 8).tobytes())
    h.update(atoms.pbc.astype(np.int8).tobytes())
    h.update(np.array(charge_and_spin(atoms), dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


def to_pyscf_mol(atoms: Atoms, basis, charge: Optional[int] = None, spin: Optional[int] = None,
                 verbose: int = 0):
    """The PySCF Mole of a molecule; charge and spin default to atoms.info.

    Elements for which PySCF knows an ECP by the name of their orbital basis get it (def2 beyond Kr:
    :func:`rhocast.ecp.ecp_of`, which refuses a def2 element beyond Kr without one); ``mol.nelectron``
    then counts valence electrons only. Positions are converted to Bohr with ASE's constant, the one every rhocast module uses (PySCF's
    own Angstrom conversion differs in the tenth digit).
    """
    from ase.units import Bohr
    from pyscf import gto

    if atoms.pbc.any():
        raise ValueError(f"{describe(atoms)} is periodic: use rhocast.pbc.grid.to_pyscf_cell")
    from rhocast.ecp import ecp_of

    c0, s0 = charge_and_spin(atoms)
    symbols = atoms.get_chemical_symbols()
    return gto.M(atom=[(s, tuple(p)) for s, p in zip(symbols, atoms.positions / Bohr)],
                 basis=basis, ecp=ecp_of(basis, symbols), charge=c0 if charge is None else charge,
                 spin=s0 if spin is None else spin, unit="Bohr", verbose=verbose)


def carrier_molecule(atoms: Atoms):
    """A PySCF Mole that only carries the geometry of ``atoms`` (auxiliary functions, cube grids):
    minimal basis, neutral, lowest spin, whatever ``atoms.info`` says, since no orbital is computed on it."""
    return to_pyscf_mol(atoms, "sto-3g", charge=0, spin=int(atoms.numbers.sum()) % 2)
