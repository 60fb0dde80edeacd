#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "registry.hpp"
#include "rhocast/collocation.hpp"

namespace py = pybind11;

RHOCAST_BINDING(collocation) {
    m.def("shell_radius", &rhocast::shell_radius, py::arg("shell"), py::arg("tol"), py::arg("deriv") = 0,
          "Radius (Bohr) beyond which the shell's functions (and gradients with deriv=1) are below tol.");
    m.def("collocate_density",
          [](const rhocast::Basis& basis, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
             const Eigen::Matrix3d& cell, const std::array<int, 3>& mesh, const Eigen::VectorXd& coefficients,
             int deriv, double tol) {
              py::gil_scoped_release release;
              return rhocast::collocate_density(basis, numbers, positions, cell, mesh, coefficients, deriv, tol);
          },
          py::arg("basis"), py::arg("numbers"), py::arg("positions"), py::arg("cell"), py::arg("mesh"),
          py::arg("coefficients"), py::arg("deriv") = 0, py::arg("tol") = 1e-12,
          "Lattice-summed sum_P c_P phi_P (and gradient) on the cell's uniform grid: (1 + 3 deriv, N_g). Bohr.");
    m.def("collocate_functions",
          [](const rhocast::Basis& basis, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
             const Eigen::MatrixXd& coords, int deriv, double tol) {
              py::gil_scoped_release release;
              return rhocast::collocate_functions(basis, numbers, positions, coords, deriv, tol);
          },
          py::arg("basis"), py::arg("numbers"), py::arg("positions"), py::arg("coords"), py::arg("deriv") = 0,
          py::arg("tol") = 1e-12,
          "phi_P (and gradients) at points (n_points, 3), Bohr, no lattice sum: ((1 + 3 deriv) n_points, n_functions), "
          "canonical order, component-major; per-shell screening below tol.");
    m.def("collocate_density_points",
          [](const rhocast::Basis& basis, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
             const Eigen::MatrixXd& coords, const Eigen::VectorXd& coefficients, int deriv, double tol) {
              py::gil_scoped_release release;
              return rhocast::collocate_density_points(basis, numbers, positions, coords, coefficients, deriv, tol);
          },
          py::arg("basis"), py::arg("numbers"), py::arg("positions"), py::arg("coords"), py::arg("coefficients"),
          py::arg("deriv") = 0, py::arg("tol") = 1e-12,
          "sum_P c_P phi_P (and gradient) at points (n_points, 3), Bohr, no lattice sum: (1 + 3 deriv, n_points); "
          "coefficients in canonical order; shells skipped where their contribution is below tol.");
    m.def("integrate_functions",
          [](const rhocast::Basis& basis, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
             const Eigen::Matrix3d& cell, const std::array<int, 3>& mesh, const Eigen::MatrixXd& values,
             double tol) {
              py::gil_scoped_release release;
              return rhocast::integrate_functions(basis, numbers, positions, cell, mesh, values, tol);
          },
          py::arg("basis"), py::arg("numbers"), py::arg("positions"), py::arg("cell"), py::arg("mesh"),
          py::arg("values"), py::arg("tol") = 1e-12,
          "sum_g f_0 phi_P + f_x d_x phi_P over the grid for values (1 or 4, N_g); canonical order, no weight.");
}
