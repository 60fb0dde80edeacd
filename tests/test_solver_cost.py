"""solver='auto': the direct solve or CG by estimated cost (rhocast.solver_cost).

Oracles: the operation counts against the core's own shell maps and metrics, hand-computed costs, and
the choice flipping where the costs cross.
"""
from pathlib import Path

import numpy as np
import pytest

import rhocast
from rhocast.model import DensityModel, loss_metric_matrix
from rhocast.solver_cost import cg_cost, cheaper_solver, direct_cost, expected_cg_iterations
from rhocast.structures import read_structures

DATA = Path(__file__).with_name("data")
SMALL = dict(cutoff=4.0, max_radial=4, max_angular=3, n_sparse=8, regularization=1e-6, n_features=None)


@pytest.fixture(scope="module")
def waters(tmp_path_factory):
    path = tmp_path_factory.mktemp("cost") / "waters"
    rhocast.compute_references(read_structures(DATA / "water_monomers_50.xyz")[:6], path, basis="sto-3g",
                               auxbasis="def2-universal-jkfit", grid_level=1, progress=False)
    return rhocast.Dataset(path)


def test_operation_counts_match_the_assembled_problem(waters):
    model = DensityModel(**SMALL, solver="auto").fit(waters, progress=False)
    counts = model._solver_counts
    psi_values = psi_coefficients = metric_values = 0
    for i in waters.indices():
        a = waters.atoms(i)
        shells, psi = model._structure_maps(a)
        q = sum((2 * l + 1) * psi[k].shape[1] for _, l, _, k in shells)
        psi_values += q
        psi_coefficients += q * waters.coefficients(i).size
        metric_values += loss_metric_matrix(a, model.auxbasis_, model.loss_metric, model.overlap_tol).memory_bytes / 8
    assert counts["psi_values"] == psi_values
    assert counts["psi_coefficients"] == psi_coefficients
    assert counts["metric_values"] == metric_values
    report = model.fit_report_["solver_costs"]
    assert report["direct_flops"] == direct_cost(counts, model.n_weights_)
    assert report["hessian_mb"] == pytest.approx(8e-6 * model.n_weights_ ** 2)


def test_costs_by_hand():
    counts = dict(psi_values=100.0, psi_coefficients=2000.0, metric_values=50.0, jacobi_flops=30.0)
    assert direct_cost(counts, 10) == 2 * (2000 + 10 * 100) + 1000 / 3
    from rhocast.solver_cost import STREAMED_FLOP_COST

    assert cg_cost(counts, [4, 6], 7) == STREAMED_FLOP_COST * 7 * (4 * 150 + 2 * 52) + 30 + (64 + 216) / 3
    assert expected_cg_iterations(1e-3, 2000, 10 ** 6) == 180
    assert expected_cg_iterations(1e-8, 50, 10 ** 6) == 50 and expected_cg_iterations(1e-8, 2000, 30) == 30


def test_auto_picks_the_cheaper_solver(waters):
    """Small water problem: the direct solve is cheaper (and used); with CG limited to one iteration,
    or the direct solve barred by direct_max_weights, auto takes CG."""
    model = DensityModel(**SMALL, solver="auto").fit(waters, progress=False)
    costs = model.fit_report_["solver_costs"]
    assert costs["direct_flops"] < costs["cg_flops"] and model.fit_report_["solver"] == "direct"
    counts, blocks = model._solver_counts, model._preconditioner_blocks()[1]
    assert cheaper_solver(counts, model.n_weights_, blocks, 1e-6, 1, 10 ** 6)[0] == "cg"
    assert cheaper_solver(counts, model.n_weights_, blocks, 1e-6, 2000, model.n_weights_ - 1)[0] == "cg"
    assert cheaper_solver(counts, model.n_weights_, blocks, 1e-6, 2000, model.n_weights_)[0] == "direct"
    barred = DensityModel(**SMALL, solver="auto", direct_max_weights=10).fit(waters, progress=False)
    assert barred.fit_report_["solver"] == "cg"
    assert DensityModel(**SMALL, solver="direct").fit(waters, progress=False).fit_report_["solver_costs"] is None
