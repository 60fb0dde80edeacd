#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include <optional>

#include "registry.hpp"
#include "rhocast/overlap.hpp"
#include "rhocast/solid_harmonics.hpp"

namespace py = pybind11;

RHOCAST_BINDING(overlap) {
    m.def("overlap_matrix",
          [](const rhocast::Basis& basis, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
             std::optional<Eigen::Matrix3d> cell, double tol) {
              py::gil_scoped_release release;
              return rhocast::overlap_matrix(basis, numbers, positions, cell ? &*cell : nullptr, tol);
          },
          py::arg("basis"), py::arg("numbers"), py::arg("positions"), py::arg("cell") = py::none(),
          py::arg("tol") = 1e-10,
          "Block-sparse overlap matrix (canonical order). positions (n, 3) and cell rows in Bohr.");
    m.def("shell_overlap", &rhocast::shell_overlap, py::arg("a"), py::arg("A"), py::arg("b"), py::arg("B"));
    m.def("screening_distance", &rhocast::screening_distance, py::arg("basis"), py::arg("za"), py::arg("zb"),
          py::arg("tol"));
    m.def("real_spherical_harmonics",
          [](int l, const Eigen::MatrixX3d& xyz) {
              Eigen::MatrixXd out(xyz.rows(), 2 * l + 1);
              for (int k = 0; k < xyz.rows(); ++k) {
                  auto y = rhocast::real_spherical_harmonics(l, xyz(k, 0), xyz(k, 1), xyz(k, 2));
                  for (int m = 0; m < 2 * l + 1; ++m) out(k, m) = y[m];
              }
              return out;
          },
          py::arg("l"), py::arg("xyz"), "Y_lm of the directions xyz (n, 3); shape (n, 2l+1), m = -l..l.");
}
