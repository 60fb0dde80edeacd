"""Auxiliary basis sets and the canonical order of density coefficients (METHOD.md section 2).

Canonical order of a structure's coefficient vector: atom (input order) -> shell (basis order) -> m,
with m = -l..l inside a shell. PySCF stores p shells as (x, y, z), i.e. m = (+1, -1, 0); the canonical
order is (y, z, x) = m (-1, 0, +1). With that reordering PySCF's spherical functions are
``c_k r^l exp(-a_k r^2) Y_lm`` with the standard orthonormal real spherical harmonics Y_lm.
Lengths are in Bohr.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

import numpy as np

# A basis as PySCF accepts it: a name ("def2-universal-jkfit") or a dict element -> name or
# explicit shell list ([[l, [exp, coef, ...], ...], ...]); or "etb:ORBITAL[:BETA]", the even-tempered
# basis PySCF derives from the orbital basis ORBITAL (pyscf.df.addons.aug_etb, beta default 2.0).
BasisSpec = Union[str, Mapping[str, object]]

ETB_PREFIX = "etb:"


def even_tempered_shells(spec: str, symbol: str) -> list:
    """Shells (PySCF format) of the even-tempered basis ``etb:ORBITAL[:BETA]`` for one element.

    For every l up to twice the orbital basis' largest l, exponents run from the smallest to the largest
    product exponent of the orbital shells in ratios of beta. Such functions are as smooth as the
    density itself, so they integrate accurately on a cell's uniform grid (unlike JK-fit bases,
    whose core functions are far too tight).
    """
    from pyscf import gto
    from pyscf.df.addons import aug_etb

    parts = spec[len(ETB_PREFIX):].split(":")
    if not parts[0] or len(parts) > 2:
        raise ValueError(f"even-tempered basis {spec!r}: expected 'etb:ORBITAL_BASIS[:BETA]'")
    beta = float(parts[1]) if len(parts) == 2 else 2.0
    mol = gto.M(atom=f"{symbol} 0 0 0", basis={symbol: parts[0]}, spin=gto.charge(symbol) % 2, verbose=0)
    return aug_etb(mol, beta=beta)[symbol]

_P_TO_CANONICAL = np.array([1, 2, 0])  # PySCF (x, y, z) -> canonical (y, z, x)


@dataclass(frozen=True)
class Shell:
    """One contracted shell: phi_m(r) = sum_k coefficients[k] r^l exp(-exponents[k] r^2) Y_lm."""

    l: int
    exponents: np.ndarray  # Bohr^-2
    coefficients: np.ndarray  # normalisation included


def _shells_by_atom(mol) -> list[list[Shell]]:
    """The normalised shells of every atom of a PySCF molecule (or cell), in basis order."""
    shells: list[list[Shell]] = [[] for _ in range(mol.natm)]
    for ib in range(mol.nbas):
        l = int(mol.bas_angular(ib))
        exps = np.asarray(mol.bas_exp(ib), dtype=float)
        ctr = np.asarray(mol._libcint_ctr_coeff(ib), dtype=float)
        # A general contraction is split into one shell per contracted function: PySCF orders
        # its functions contraction-major, then m, which is exactly this split.
        shells[mol.bas_atom(ib)] += [Shell(l, exps.copy(), ctr[:, k].copy()) for k in range(ctr.shape[1])]
    return shells


def _same_shells(a: list[Shell], b: list[Shell]) -> bool:
    return len(a) == len(b) and all(s.l == t.l and np.array_equal(s.exponents, t.exponents)
                                    and np.array_equal(s.coefficients, t.coefficients) for s, t in zip(a, b))


def atomic_numbers(mol) -> np.ndarray:
    """Atomic numbers Z of a PySCF molecule's (or cell's) atoms; not ``mol.atom_charges()``, which
    subtracts the core electrons of an ECP or pseudopotential."""
    from pyscf.data.elements import charge

    return np.array([int(charge(mol.atom_pure_symbol(i))) for i in range(mol.natm)], dtype=int)


class AuxiliaryBasis:
    """An atom-centred basis for the density: the PySCF ``spec`` and its normalised shells per element.

    Parameters
    ----------
    spec : str or dict
        Anything PySCF accepts as a basis (a name, or a dict element symbol -> name or shell list).
    elements : iterable of str or int
        The elements the basis must cover. An element the basis lacks raises ``ValueError``.
    """

    def __init__(self, spec: BasisSpec, elements: Iterable[Union[str, int]]):
        from pyscf import gto

        self.spec = spec if isinstance(spec, str) else {str(k): v for k, v in spec.items()}
        self.shells: dict[int, list[Shell]] = {}
        self._pyscf_basis: dict[str, object] = {}  # element symbol -> what PySCF is given
        for el in sorted({_atomic_number(e) for e in elements}):
            symbol = gto.mole._symbol(el)
            basis = self.spec if isinstance(self.spec, str) else self.spec.get(symbol)
            if isinstance(basis, str) and basis.startswith(ETB_PREFIX):
                try:
                    basis = even_tempered_shells(basis, symbol)
                except Exception as err:  # PySCF raises its own error types for a missing element
                    raise ValueError(f"auxiliary basis {_describe(spec)} has no functions for {symbol}: {err}") from err
            self._pyscf_basis[symbol] = basis
            if basis is None:
                raise ValueError(f"auxiliary basis {_describe(spec)} has no functions for {symbol}")
            try:
                mol = gto.M(atom=f"{symbol} 0 0 0", basis={symbol: basis}, spin=el % 2, verbose=0)
            except Exception as err:  # PySCF raises bare errors for missing elements
                raise ValueError(f"auxiliary basis {_describe(spec)} has no functions for {symbol}: {err}") from err
            shells = _shells_by_atom(mol)[0]
            if not shells:
                raise ValueError(f"auxiliary basis {_describe(spec)} has no functions for {symbol}")
            self.shells[el] = shells

    @classmethod
    def from_shells(cls, spec: BasisSpec, shells: Mapping[int, list]) -> "AuxiliaryBasis":
        """A basis from its normalised shells per atomic number (a version-2 model file), without PySCF;
        ``spec`` is kept to build PySCF objects (make_auxmol) later."""
        basis = cls.__new__(cls)
        basis.spec = spec if isinstance(spec, str) else {str(k): v for k, v in spec.items()}
        basis.shells = {int(z): list(v) for z, v in sorted(shells.items())}
        basis._pyscf_basis = {}  # make_auxmol falls back to spec
        return basis

    @classmethod
    def of_auxmol(cls, auxmol) -> "AuxiliaryBasis":
        """The basis of a PySCF auxiliary molecule (or cell) read from its own functions, so that its
        coefficients are in this basis' canonical order; every atom of an element must carry the same shells."""
        shells: dict[int, list[Shell]] = {}
        for z, atom_shells in zip(atomic_numbers(auxmol), _shells_by_atom(auxmol)):
            if int(z) in shells and not _same_shells(shells[int(z)], atom_shells):
                raise ValueError(f"auxiliary molecule has different basis functions on two atoms of Z={z}: "
                                 "an AuxiliaryBasis holds one set of shells per element")
            shells[int(z)] = atom_shells
        return cls.from_shells(auxmol.basis, shells)

    # --- sizes and layout -------------------------------------------------------------------------
    @property
    def elements(self) -> list[int]:
        return sorted(self.shells)

    @property
    def max_l(self) -> int:
        return max(s.l for shells in self.shells.values() for s in shells)

    def n_functions(self, atomic_number: int) -> int:
        return sum(2 * s.l + 1 for s in self._shells_for(atomic_number))

    def radial_channels(self, atomic_number: int) -> list[tuple[int, int]]:
        """(l, n) of every shell of an element in basis order; n counts the shells of that l."""
        seen: dict[int, int] = {}
        out = []
        for s in self._shells_for(atomic_number):
            out.append((s.l, seen.get(s.l, 0)))
            seen[s.l] = seen.get(s.l, 0) + 1
        return out

    def offsets(self, numbers: Iterable[int]) -> np.ndarray:
        """Start of every atom's coefficients in the canonical vector; length n_atoms + 1."""
        sizes = [self.n_functions(int(z)) for z in numbers]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def _shells_for(self, z: int) -> list[Shell]:
        try:
            return self.shells[int(z)]
        except KeyError:
            raise ValueError(f"auxiliary basis {_describe(self.spec)} was not built for Z={z}") from None

    # --- interop ----------------------------------------------------------------------------------
    def to_core(self):
        """The basis as ``rhocast._core.Basis`` for the compiled core."""
        from rhocast import _core

        return _core.Basis({z: [_core.Shell(s.l, list(s.exponents), list(s.coefficients)) for s in shells]
                            for z, shells in self.shells.items()})

    def make_auxmol(self, mol):
        """The PySCF auxiliary molecule of this basis for ``mol``; for a ``pyscf.pbc`` Cell, the auxiliary cell."""
        from pyscf.df.addons import make_auxmol
        from pyscf.pbc.gto import Cell

        basis = {s: self._pyscf_basis[s] for s in {mol.atom_pure_symbol(i) for i in range(mol.natm)}
                 if s in self._pyscf_basis} or self.spec
        if isinstance(mol, Cell):
            from pyscf.pbc.df.incore import make_auxcell

            return make_auxcell(mol, basis)
        return make_auxmol(mol, basis)

    def to_json(self) -> str:
        return json.dumps({"spec": self.spec, "elements": self.elements})

    @classmethod
    def from_json(cls, text: str) -> "AuxiliaryBasis":
        d = json.loads(text)
        return cls(d["spec"], d["elements"])

    def __repr__(self) -> str:
        return f"AuxiliaryBasis({_describe(self.spec)}, elements={self.elements})"


def default_auxbasis(orbital_basis: str) -> str:
    """PySCF's JK-fit partner of an orbital basis (def2-* -> def2-universal-jkfit, cc-pVXZ -> cc-pVXZ-jkfit)."""
    from pyscf.df.addons import DEFAULT_AUXBASIS
    from pyscf.gto.basis import _format_basis_name

    key = _format_basis_name(orbital_basis)
    if key in DEFAULT_AUXBASIS:
        return DEFAULT_AUXBASIS[key][0]
    if key.startswith("def2"):
        return "def2-universal-jkfit"
    raise ValueError(f"no JK-fit partner known for orbital basis {orbital_basis!r}; pass --auxbasis")


def canonical_permutation(mol) -> np.ndarray:
    """Index array p such that ``v_canonical = v_pyscf[p]`` for a PySCF (aux) molecule's functions."""
    perm = np.arange(mol.nao)
    for ib in range(mol.nbas):
        if mol.bas_angular(ib) != 1:
            continue
        start = mol.ao_loc[ib]
        for k in range(mol.bas_nctr(ib)):
            s = start + 3 * k
            perm[s:s + 3] = s + _P_TO_CANONICAL
    return perm


def to_canonical(mol, values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Reorder an axis indexed by ``mol``'s functions from PySCF order to canonical order."""
    return np.take(values, canonical_permutation(mol), axis=axis)


def from_canonical(mol, values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Inverse of :func:`to_canonical`."""
    return np.take(values, np.argsort(canonical_permutation(mol)), axis=axis)


def _atomic_number(e: Union[str, int]) -> int:
    from pyscf.data.elements import charge

    return int(e) if not isinstance(e, str) else int(charge(e))


def _describe(spec) -> str:
    return repr(spec) if isinstance(spec, str) else "(custom basis)"
