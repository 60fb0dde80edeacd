// Overlap matrices of an atom-centred Gaussian basis, assembled by atom-pair blocks with screening.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "rhocast/basis.hpp"
#include "rhocast/block_sparse.hpp"

namespace rhocast {

// <phi_a(r - A) | phi_b(r - B)> for two shells; shape (2 la + 1) x (2 lb + 1), canonical m order.
// Analytic: Obara-Saika recursion over Cartesian primitives, then the Cartesian -> real solid
// harmonic transformation of solid_harmonics.hpp.
Eigen::MatrixXd shell_overlap(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                              const Eigen::Vector3d& B);

// Distance (Bohr) beyond which every element of the (za, zb) block is below `tol`.
// Found before assembly from the basis alone: the Frobenius norm of an atom-pair block is
// rotation invariant and bounds its largest element, so it is scanned along one axis.
double screening_distance(const Basis& basis, int za, int zb, double tol);

// Overlap matrix S_PQ of the basis on atoms `numbers` at `positions` (Bohr, one row per atom).
// With `cell` (rows = lattice vectors, Bohr) the matrix is lattice-summed over every image that
// contributes (S_PQ = sum_T <P(r - R_i)|Q(r - R_j - T)>). Blocks whose elements are all below `tol`
// are not stored: memory is linear in the number of atoms.
BlockSparseMatrix overlap_matrix(const Basis& basis, const std::vector<int>& numbers,
                                 const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                 const Eigen::Matrix3d* cell, double tol = 1e-10);

}  // namespace rhocast
