// Properties of a predicted density for hosts without Python (the C API, MD codes); the same
// conventions as python/rhocast/properties.py.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "rhocast/predictor.hpp"

namespace rhocast {

// The density closest to c in the L2 norm that integrates to n_electrons: c + S^-1 q (N - q.c) / (q.S^-1 q),
// with S the overlap of the auxiliary basis (molecules; positions in Bohr) and q the integrals of the
// functions. S^-1 q by a sparse LDL^T factorisation of S (AMD ordering; Python solves the same system by
// sparse LU): S is sparse in atoms, its factor fills in beyond linear memory for large 3D systems.
Eigen::VectorXd with_electron_count(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                    const Eigen::Ref<const Eigen::VectorXd>& c, double n_electrons);

// Dipole (e Bohr) of a neutral molecule's nuclei and predicted density corrected to sum Z electrons:
// origin independent, equal to properties.dipole_moment(renormalize=True) of Python.
Eigen::Vector3d corrected_dipole(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                 const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                 const Eigen::Ref<const Eigen::VectorXd>& c);

// Atomic polar tensors d mu / d R of the corrected dipole (with_electron_count to n_electrons, then dipole())
// of a molecule, in e (e Bohr per Bohr): apt(x, 3 b + y) = d mu_x / d R_{b, y}. Analytic from the
// coefficients' gradients (DensityPredictor::coefficient_gradients of the same structure) and the
// position dependence of the correction through S (overlap_gradient_contraction). For a neutral molecule
// sum_b apt(x, 3 b + y) = 0 (the dipole does not change under a translation).
Eigen::MatrixXd corrected_dipole_derivatives(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Ref<const Eigen::VectorXd>& c,
                                             const CoefficientGradients& gradients, double n_electrons);

}  // namespace rhocast
