#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "registry.hpp"
#include "rhocast/properties.hpp"

namespace py = pybind11;

RHOCAST_BINDING(properties) {
    m.def(
        "corrected_dipole_derivatives",
        [](const rhocast::DensityPredictor& p, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
           double n_electrons) {
            const Eigen::VectorXd c = p.predict(numbers, positions);
            return rhocast::corrected_dipole_derivatives(p, numbers, positions, c,
                                                         p.coefficient_gradients(numbers, positions), n_electrons);
        },
        py::arg("predictor"), py::arg("numbers"), py::arg("positions"), py::arg("n_electrons"),
        py::call_guard<py::gil_scoped_release>(),
        "Atomic polar tensors (e) of a molecule's predicted density corrected to n_electrons: (3, 3 n_atoms), "
        "[x, 3 b + y] = d mu_x / d R_{b, y}; positions in Bohr (cpp/include/rhocast/properties.hpp).");
}
