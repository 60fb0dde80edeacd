"""Which solver a fit should use: the estimated costs of the direct solve and of CG (issue 15).

The counts come from the assembled problem (summed over ranks): ``psi_values`` = sum_s q_s with
q_s = sum over the shells of structure s of (2 l + 1) D (the Psi entries one product applies),
``psi_coefficients`` = sum_s q_s n_coef,s and ``metric_values`` = sum_s (stored entries of O_s).

- direct: the structure-by-structure assembly of H (``Regression.hessian``) costs about
  2 q_s (n_coef,s + n_weights) flops per structure (O_s Psi_s over the metric's blocks, then Psi_s^T of
  it into n_weights columns), the Cholesky n_weights^3 / 3; memory 8 n_weights^2 B on rank 0.
- CG: each iteration one Hessian-vector product, 4 q_s + 4 nnz(O_s) flops per structure (Psi, O_s with
  its mirrored blocks, Psi^T), and the block-Jacobi solve, 2 sum_b n_b^2; once, the blocks
  (2 (2 l + 1) D^2 per pair of same-l channels of an atom, counted as channels^2 per (atom, lambda)) and
  their Cholesky, sum_b n_b^3 / 3.
CG's products stream Psi and the metrics from memory (about one multiply-add per 8 B read), where the
assembly and the Cholesky are matrix-matrix products: a streamed flop counts ``STREAMED_FLOP_COST``
dense ones.
"""
from __future__ import annotations

from typing import Mapping, Sequence

# Dense flops per streamed flop, measured on the loaded 2-core VM (one thread), 10 waters, 594 weights:
# the direct solve ran at 0.34 GFLOP/s of these counts, CG (208 iterations) at 0.083.
STREAMED_FLOP_COST = 4.0


def expected_cg_iterations(regularization: float, max_iter: int, n_weights: int) -> int:
    """CG iterations to expect: 180 (eta / 1e-3)^-0.16, between the measured 178 (QM9, eta 1e-3, CG to
    1e-6) and ~1140 (900 water monomers, eta 1e-8), at most ``max_iter`` and ``n_weights``."""
    guess = 180.0 * (regularization / 1e-3) ** -0.16
    return int(max(1, min(guess, max_iter, n_weights)))


def direct_cost(counts: Mapping[str, float], n_weights: int) -> float:
    """Dense flops of the direct solve: assembly and Cholesky."""
    return 2.0 * (counts["psi_coefficients"] + n_weights * counts["psi_values"]) + n_weights ** 3 / 3.0


def cg_cost(counts: Mapping[str, float], block_sizes: Sequence[int], iterations: int) -> float:
    """Dense-equivalent flops of CG: ``iterations`` products and preconditioner solves, and the
    preconditioner's set-up."""
    product = 4.0 * (counts["psi_values"] + counts["metric_values"]) + 2.0 * sum(n * n for n in block_sizes)
    setup = counts["jacobi_flops"] + sum(n ** 3 for n in block_sizes) / 3.0
    return STREAMED_FLOP_COST * iterations * product + setup


def cheaper_solver(counts: Mapping[str, float], n_weights: int, block_sizes: Sequence[int], regularization: float,
                   max_iter: int, direct_max_weights: int) -> tuple[str, dict]:
    """('direct' or 'cg', the estimates): the cheaper one, but never the direct solve above
    ``direct_max_weights`` weights (its Hessian needs 8 n_weights^2 B)."""
    iterations = expected_cg_iterations(regularization, max_iter, n_weights)
    costs = {"direct_flops": direct_cost(counts, n_weights), "cg_flops": cg_cost(counts, block_sizes, iterations),
             "cg_iterations_expected": iterations, "hessian_mb": 8e-6 * n_weights ** 2}
    direct = n_weights <= direct_max_weights and costs["direct_flops"] <= costs["cg_flops"]
    return ("direct" if direct else "cg"), costs
