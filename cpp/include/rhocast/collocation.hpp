// Auxiliary-basis densities on the uniform grid of a periodic cell (collocation) and the transpose
// (integration of a field against every basis function), as in Gaussian-and-plane-wave codes.
//
// Grid: mesh (n0, n1, n2); point (i, j, k) is r = (i/n0) a0 + (j/n1) a1 + (k/n2) a2 with a_d the rows
// of `cell` (Bohr), flattened as g = (i n1 + j) n2 + k: the order of pyscf.pbc's
// cell.gen_uniform_grids(mesh). Functions are lattice-summed, phi_P(r) = sum_T phi_P(r - R_P - T),
// and each shell is visited only on the grid points (of every image) within its screening radius,
// so the cost is linear in the number of atoms at a fixed grid density.
// Coefficients and projections are in canonical order (atom -> shell -> m, basis.hpp).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <vector>

#include "rhocast/basis.hpp"

namespace rhocast {

using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Radius (Bohr) beyond which |phi_m(r)| (and, with deriv, its gradient) is below `tol` for every m.
double shell_radius(const Shell& shell, double tol, int deriv = 0);

// rho(r_g) = sum_P c_P phi_P(r_g) and, with deriv = 1, its gradient: shape (1 + 3 deriv, N_g).
Eigen::MatrixXd collocate_density(const Basis& basis, const std::vector<int>& numbers,
                                  const Eigen::Ref<const Eigen::MatrixXd>& positions, const Eigen::Matrix3d& cell,
                                  const std::array<int, 3>& mesh, const Eigen::Ref<const Eigen::VectorXd>& coefficients,
                                  int deriv = 0, double tol = 1e-12);

// phi_P(r_g) (and, with deriv = 1, d/dx, d/dy, d/dz phi_P) at arbitrary points `coords` (n_points, 3), no
// lattice sum (molecular DFT grids): shape (1 + 3 deriv) n_points x n_functions, component-major, so a
// row-major buffer reshapes to (1 + 3 deriv, n_points, n_functions). Points are screened in blocks of 64
// (PySCF's grids are sorted into spatial boxes): a shell is evaluated only where it exceeds `tol`.
RowMatrixXd collocate_functions(const Basis& basis, const std::vector<int>& numbers,
                                const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                const Eigen::Ref<const Eigen::MatrixXd>& coords, int deriv = 0, double tol = 1e-12);

// rho(r_g) = sum_P c_P phi_P(r_g) (and, with deriv = 1, its gradient) at arbitrary points `coords`
// (n_points, 3), no lattice sum, without the functions themselves: shape (1 + 3 deriv, n_points). Each
// shell's functions are first contracted with its coefficients into one polynomial; the shell is
// skipped where sum_m |c_m| |phi_m| (and its gradient) is below `tol`. Points are screened in blocks
// of 64 as in collocate_functions.
Eigen::MatrixXd collocate_density_points(const Basis& basis, const std::vector<int>& numbers,
                                         const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                         const Eigen::Ref<const Eigen::MatrixXd>& coords,
                                         const Eigen::Ref<const Eigen::VectorXd>& coefficients, int deriv = 0,
                                         double tol = 1e-12);

// w_P = sum_g [f_0(r_g) phi_P(r_g) + sum_x f_x(r_g) d_x phi_P(r_g)] for `values` f of shape (1, N_g) or
// (4, N_g) (no quadrature weight applied). The transpose of collocate_density.
Eigen::VectorXd integrate_functions(const Basis& basis, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions, const Eigen::Matrix3d& cell,
                                    const std::array<int, 3>& mesh, const Eigen::Ref<const Eigen::MatrixXd>& values,
                                    double tol = 1e-12);

}  // namespace rhocast
