#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "registry.hpp"
#include "rhocast/regression.hpp"

namespace py = pybind11;
using rhocast::Regression;

RHOCAST_BINDING(regression) {
    py::class_<Regression>(m, "Regression",
                           "Density loss, gradient and Hessian-vector products over a shard of structures.")
        .def(py::init([](int n_weights, double regularization, const std::string& psi_precision) {
                 if (psi_precision != "float64" && psi_precision != "float32")
                     throw std::invalid_argument("psi_precision must be 'float64' or 'float32', not '" +
                                                 psi_precision + "'");
                 return Regression(n_weights, regularization,
                                   psi_precision == "float32" ? rhocast::PsiPrecision::Float32
                                                              : rhocast::PsiPrecision::Float64);
             }),
             py::arg("n_weights"), py::arg("regularization"), py::arg("psi_precision") = "float64",
             "psi_precision: storage of Psi, 'float64' or 'float32' (products accumulate in double).")
        .def("add_structure",
             [](Regression& r, const rhocast::BlockSparseMatrix& metric, const Eigen::VectorXd& target,
                const Eigen::Matrix<int, Eigen::Dynamic, 4, Eigen::RowMajor>& shells, std::vector<Eigen::MatrixXd> psi) {
                 rhocast::TrainingStructure s{metric, target, {}, std::move(psi)};
                 for (int k = 0; k < shells.rows(); ++k)
                     s.shells.push_back({shells(k, 0), shells(k, 1), shells(k, 2), shells(k, 3)});
                 r.add_structure(std::move(s));
             },
             py::arg("metric"), py::arg("target"), py::arg("shells"), py::arg("psi"),
             "shells: int array (n_shells, 4) of (coef_start, l, weight_start, psi index).")
        .def_property_readonly("n_structures", &Regression::n_structures)
        .def_property_readonly("n_weights", &Regression::n_weights)
        .def_property_readonly("memory_bytes", &Regression::memory_bytes, "bytes held: Psi, metrics, targets")
        .def_property_readonly("psi_memory_bytes", &Regression::psi_memory_bytes, "bytes of Psi alone")
        .def("set_total_structures", &Regression::set_total_structures, py::arg("n"))
        .def("predict", &Regression::predict, py::arg("structure"), py::arg("w"))
        .def("loss", &Regression::loss, py::arg("w"), py::arg("add_regularization") = true,
             py::call_guard<py::gil_scoped_release>())
        .def("gradient", &Regression::gradient, py::arg("w"), py::arg("add_regularization") = true,
             py::call_guard<py::gil_scoped_release>())
        .def("hessian_product", &Regression::hessian_product, py::arg("d"), py::arg("add_regularization") = true,
             py::call_guard<py::gil_scoped_release>())
        .def("rhs", &Regression::rhs, py::call_guard<py::gil_scoped_release>())
        .def("hessian", &Regression::hessian, py::arg("add_regularization") = true,
             py::call_guard<py::gil_scoped_release>())
        .def("jacobi_blocks", &Regression::jacobi_blocks, py::arg("block_starts"), py::arg("block_sizes"),
             py::arg("add_regularization") = true, py::call_guard<py::gil_scoped_release>());
}
