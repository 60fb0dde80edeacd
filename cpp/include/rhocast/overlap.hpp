// Overlap matrices of an atom-centred Gaussian basis, assembled by atom-pair blocks with screening.
#pragma once

#include <Eigen/Dense>
#include <array>
#include <vector>

#include "rhocast/basis.hpp"
#include "rhocast/block_sparse.hpp"

namespace rhocast {

// <phi_a(r - A) | phi_b(r - B)> for two shells; shape (2 la + 1) x (2 lb + 1), canonical m order.
// Analytic: Obara-Saika recursion over Cartesian primitives, then the Cartesian -> real solid
// harmonic transformation of solid_harmonics.hpp.
Eigen::MatrixXd shell_overlap(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                              const Eigen::Vector3d& B);

// d <phi_a(r - A) | phi_b(r - B)> / d A_x for x, y, z: (2 la + 1) x (2 lb + 1) each; d/dB is minus it.
std::array<Eigen::MatrixXd, 3> shell_overlap_gradient(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                                                      const Eigen::Vector3d& B);

// g(3 a + x, k) = sum_PQ u(P, k) v(Q) d S_PQ / d R_{a, x}, S the overlap_matrix() of a molecule (no cell) with
// the same screening: what derivatives of S^-1 need (d S^-1 = -S^-1 d S S^-1), without storing d S.
// u (n_functions, k), v (n_functions); positions in Bohr.
Eigen::MatrixXd overlap_gradient_contraction(const Basis& basis, const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Ref<const Eigen::MatrixXd>& u,
                                             const Eigen::Ref<const Eigen::VectorXd>& v, double tol = 1e-10);

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
