#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include "registry.hpp"
#include "rhocast/lambda_soap.hpp"

namespace py = pybind11;
using rhocast::LambdaSoap;
using rhocast::LambdaSoapSettings;

RHOCAST_BINDING(lambda_soap) {
    py::class_<LambdaSoap>(m, "LambdaSoap")
        .def(py::init([](std::vector<int> species, double cutoff, int max_radial, int max_angular, int max_lambda,
                         double atomic_width, double cutoff_width) {
                 return LambdaSoap(LambdaSoapSettings{cutoff, max_radial, max_angular, max_lambda, atomic_width,
                                                      cutoff_width, std::move(species)});
             }),
             py::arg("species"), py::arg("cutoff"), py::arg("max_radial"), py::arg("max_angular"),
             py::arg("max_lambda"), py::arg("atomic_width"), py::arg("cutoff_width"))
        .def("n_features", &LambdaSoap::n_features, py::arg("lambda_"))
        .def("radial_integrals", &LambdaSoap::radial_integrals, py::arg("l"), py::arg("r"))
        .def_static("real_clebsch_gordan", &LambdaSoap::real_clebsch_gordan, py::arg("l1"), py::arg("l2"),
                    py::arg("lambda_"))
        .def("compute",
             [](const LambdaSoap& soap, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
                std::optional<Eigen::Matrix3d> cell, const std::vector<int>& centers) {
                 std::vector<rhocast::LambdaBlock> blocks;
                 {
                     py::gil_scoped_release release;
                     blocks = soap.compute(numbers, positions, cell ? &*cell : nullptr, centers);
                 }
                 py::dict out;
                 for (const auto& b : blocks) {
                     const py::ssize_t n = static_cast<py::ssize_t>(b.data.size()), nm = 2 * b.lambda + 1,
                                       nf = soap.n_features(b.lambda);
                     py::array_t<double> a({n, nm, nf});
                     auto r = a.mutable_unchecked<3>();
                     for (py::ssize_t k = 0; k < n; ++k)
                         for (py::ssize_t mu = 0; mu < nm; ++mu)
                             for (py::ssize_t f = 0; f < nf; ++f) r(k, mu, f) = b.data[k](mu, f);
                     out[py::int_(b.lambda)] = a;
                 }
                 return out;
             },
             py::arg("numbers"), py::arg("positions"), py::arg("cell") = py::none(),
             py::arg("centers") = std::vector<int>{},
             "{lambda: array (n_centers, 2 lambda + 1, n_features)}; cell rows = lattice vectors.")
        .def("center_feature_gradients",
             [](const LambdaSoap& soap, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
                std::optional<Eigen::Matrix3d> cell, int center, const rhocast::ColumnSelection& selected) {
                 const int n_lambda = soap.settings().max_lambda + 1;
                 if (center < 0 || center >= static_cast<int>(numbers.size()))
                     throw py::value_error("center " + std::to_string(center) + " is not an atom index 0.." +
                                           std::to_string(numbers.size() - 1));
                 if (!selected.empty() && static_cast<int>(selected.size()) != n_lambda)
                     throw py::value_error("selected: expected one column list per lambda = 0.." +
                                           std::to_string(n_lambda - 1) + ", or none");
                 for (std::size_t lam = 0; lam < selected.size(); ++lam)
                     for (int col : selected[lam])
                         if (col < 0 || col >= soap.n_features(static_cast<int>(lam)))
                             throw py::value_error("selected column " + std::to_string(col) + " of lambda " +
                                                   std::to_string(lam) + " is outside 0.." +
                                                   std::to_string(soap.n_features(static_cast<int>(lam)) - 1));
                 rhocast::FeatureGradients g;
                 {
                     py::gil_scoped_release release;
                     const auto env = soap.neighborhoods(numbers, positions, cell ? &*cell : nullptr);
                     g = soap.center_feature_gradients(center, numbers, env, selected.empty() ? nullptr : &selected);
                 }
                 py::dict out;
                 for (int lam = 0; lam < n_lambda; ++lam) out[py::int_(lam)] = py::make_tuple(g.values[lam], g.gradients[lam]);
                 return py::make_tuple(g.atoms, out);
             },
             py::arg("numbers"), py::arg("positions"), py::arg("cell"), py::arg("center"),
             py::arg("selected") = rhocast::ColumnSelection{},
             "(atoms, {lambda: (values, gradients)}): the atoms the centre's features depend on (centre first), "
             "values (2 lambda + 1, n_columns), gradients ((2 lambda + 1) n_columns, 3 len(atoms)) with row "
             "column * (2 lambda + 1) + mu and column 3 k + x = d / d R_{atoms[k], x} (per unit length).");
}
