"""Density fitting of a density matrix onto an auxiliary basis (METHOD.md section 2).

Coulomb metric (RI-V): c = J^-1 b, J_PQ = (P|1/r12|Q), b_P = sum_{mu nu} (mu nu|P) D_{mu nu}.
Overlap metric:        c = S^-1 w, S_PQ = <P|Q>,       w_P = sum_{mu nu} <mu nu P> D_{mu nu}.
All vectors returned here are in the canonical order of :mod:`rhocast.basis`. Atomic units.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from rhocast.basis import canonical_permutation
from rhocast.integrals import IntegralContext, check_metric
from rhocast.properties import constrain_count, function_moments


def _context(mol, auxmol, max_memory_mb: Optional[float], context: Optional[IntegralContext]) -> IntegralContext:
    return context if context is not None else IntegralContext(mol, auxmol, max_memory_mb)


def total_density_matrix(dm: np.ndarray) -> np.ndarray:
    """The spin-summed density matrix (nao, nao) of an RKS ``dm`` (nao, nao) or a UKS one (2, nao, nao)."""
    return dm if dm.ndim == 2 else dm[0] + dm[1]


def packed_pairs(dm: np.ndarray) -> np.ndarray:
    """A symmetric (nao, nao) matrix packed to match s2ij three-centre integrals (mu >= nu pairs, stored
    once): the off-diagonal is doubled so that ``packed_pairs(D) @ ints`` = sum_{mu nu} D_{mu nu} (mu nu|P)."""
    from pyscf import lib

    return lib.pack_tril(dm + dm.T - np.diag(np.diag(dm)))


def projections(mol, auxmol, dm: np.ndarray, metric: str = "coulomb", max_memory_mb: Optional[float] = None,
                context: Optional[IntegralContext] = None) -> np.ndarray:
    """b_P = sum_{mu nu} (mu nu|P) D_{mu nu} (coulomb) or <mu nu P> D_{mu nu} (overlap), canonical order.

    ``dm`` is the total (spin-summed) density matrix, shape (nao, nao). The three-centre integrals
    come from ``context`` (built here when None), within ``max_memory_mb`` (default ``mol.max_memory``).
    """
    check_metric(metric)
    dm_tril = packed_pairs(np.asarray(dm))
    b = np.empty(auxmol.nao)
    for p0, p1, ints in _context(mol, auxmol, max_memory_mb, context).three_center(metric):
        b[p0:p1] = dm_tril @ ints
    return b[canonical_permutation(auxmol)]


def contract_coefficients(mol, auxmol, coefficients: np.ndarray, metric: str = "coulomb",
                          max_memory_mb: Optional[float] = None,
                          context: Optional[IntegralContext] = None) -> np.ndarray:
    """M_{mu nu} = sum_P (mu nu|P) c_P (coulomb: the Coulomb matrix of the fitted density), shape (nao, nao).

    ``coefficients`` in canonical order; the transpose of :func:`projections` (same ``context``).
    """
    from pyscf import lib

    check_metric(metric)
    c = np.asarray(coefficients)[np.argsort(canonical_permutation(auxmol))]
    m_tril = np.zeros(mol.nao * (mol.nao + 1) // 2)
    for p0, p1, ints in _context(mol, auxmol, max_memory_mb, context).three_center(metric):
        m_tril += ints @ c[p0:p1]
    return lib.unpack_tril(m_tril)


def metric_matrix(auxmol, metric: str = "coulomb") -> np.ndarray:
    """J (coulomb) or S (overlap) of the auxiliary basis, canonical order, shape (naux, naux)."""
    p = canonical_permutation(auxmol)
    return IntegralContext(auxmol, auxmol).metric(metric)[np.ix_(p, p)]


def fit_density(mol, auxmol, dm: np.ndarray, metric: str = "coulomb", n_electrons: Optional[float] = None,
                context: Optional[IntegralContext] = None) -> np.ndarray:
    """Fitted coefficients c (canonical order) of the density of ``dm``; integrals from ``context``
    (built here when None).

    With ``n_electrons`` the fit is constrained to integrate to exactly that many electrons
    (a Lagrange multiplier on q^T c, in the same metric).
    """
    context = _context(mol, auxmol, None, context)
    p = canonical_permutation(auxmol)
    inverse = np.argsort(p)

    def solve(v):  # canonical order in and out; the context's factor is in PySCF order
        return context.solve_metric(v[inverse], metric)[p]

    c = solve(projections(mol, auxmol, dm, metric, context=context))
    if n_electrons is not None:
        c = constrain_count(c, function_moments(context.auxbasis, context.numbers)[0], solve, n_electrons)
    return c
