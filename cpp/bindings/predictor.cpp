#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include "registry.hpp"
#include "rhocast/predictor.hpp"

namespace py = pybind11;
using rhocast::DensityPredictor;
using rhocast::SpeciesModel;

namespace {

using IntRows = Eigen::Matrix<int, Eigen::Dynamic, 4, Eigen::RowMajor>;

Eigen::Matrix3d cell_or_zero(const std::optional<Eigen::Matrix3d>& cell) {
    return cell ? *cell : Eigen::Matrix3d::Zero();
}

}  // namespace

RHOCAST_BINDING(predictor) {
    py::class_<SpeciesModel>(m, "SpeciesModel", "One species of a DensityPredictor (cpp/include/rhocast/predictor.hpp).")
        .def(py::init([](int z, std::vector<rhocast::Shell> shells, Eigen::VectorXd baseline,
                         std::vector<Eigen::MatrixXd> sparse_features, std::vector<Eigen::MatrixXd> projectors) {
                 return SpeciesModel{z, std::move(shells), std::move(baseline), std::move(sparse_features),
                                     std::move(projectors)};
             }),
             py::arg("atomic_number"), py::arg("shells"), py::arg("baseline"), py::arg("sparse_features"),
             py::arg("projectors"),
             "sparse_features[lambda]: (M (2 lambda + 1), n_selected); projectors[lambda]: (M (2 lambda + 1), D) "
             "or an empty (0, 0) array without shells of l = lambda.");
    py::class_<DensityPredictor>(m, "DensityPredictor",
                                 "Coefficients and projected kernels of structures; positions in Bohr.")
        .def(py::init([](std::vector<int> species, double cutoff, int max_radial, int max_angular, int max_lambda,
                         double atomic_width, double cutoff_width, rhocast::ColumnSelection selected, double zeta,
                         std::vector<SpeciesModel> species_models, std::optional<Eigen::VectorXd> weights) {
                 rhocast::ModelData d;
                 d.descriptor = rhocast::LambdaSoapSettings{cutoff, max_radial, max_angular, max_lambda,
                                                            atomic_width, cutoff_width, std::move(species)};
                 d.selected = std::move(selected);
                 d.zeta = zeta;
                 d.species = std::move(species_models);
                 if (weights) d.weights = *weights;
                 return DensityPredictor(std::move(d));
             }),
             py::arg("species"), py::arg("cutoff"), py::arg("max_radial"), py::arg("max_angular"),
             py::arg("max_lambda"), py::arg("atomic_width"), py::arg("cutoff_width"), py::arg("selected"),
             py::arg("zeta"), py::arg("species_models"), py::arg("weights") = py::none(),
             "Descriptor lengths (cutoff, atomic_width, cutoff_width) in Angstrom, the unit lambda-SOAP is "
             "defined in (predictor.hpp); positions in Bohr. selected: one column list per "
             "lambda (empty = all).")
        .def_property_readonly("cutoff", &DensityPredictor::cutoff, "Bohr")
        .def_property_readonly("species", &DensityPredictor::species)
        .def_property_readonly("n_weights", &DensityPredictor::n_weights)
        .def("set_weights", &DensityPredictor::set_weights, py::arg("weights"))
        .def("predict",
             [](const DensityPredictor& p, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
                std::optional<Eigen::Matrix3d> cell, std::array<bool, 3> pbc) {
                 return p.predict(numbers, positions, cell_or_zero(cell), pbc);
             },
             py::arg("numbers"), py::arg("positions"), py::arg("cell") = py::none(),
             py::arg("pbc") = std::array<bool, 3>{false, false, false}, py::call_guard<py::gil_scoped_release>(),
             "Coefficients (canonical order); positions and cell rows in Bohr.")
        .def("projected_kernels",
             [](const DensityPredictor& p, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
                std::optional<Eigen::Matrix3d> cell, std::array<bool, 3> pbc) {
                 rhocast::ProjectedKernels k;
                 {
                     py::gil_scoped_release release;
                     k = p.projected_kernels(numbers, positions, cell_or_zero(cell), pbc);
                 }
                 IntRows shells(k.shells.size(), 4);
                 for (std::size_t r = 0; r < k.shells.size(); ++r)
                     shells.row(r) << k.shells[r].coef_start, k.shells[r].l, k.shells[r].weight_start, k.shells[r].psi;
                 return py::make_tuple(shells, k.psi);
             },
             py::arg("numbers"), py::arg("positions"), py::arg("cell") = py::none(),
             py::arg("pbc") = std::array<bool, 3>{false, false, false},
             "(shells, psi): shells int (n_shells, 4) of (coef_start, l, weight_start, psi index), psi a list of "
             "(2 lambda + 1, D) arrays, one per (atom, lambda) -- the arguments of Regression.add_structure.")
        .def("coefficient_gradients",
             [](const DensityPredictor& p, const std::vector<int>& numbers, const Eigen::MatrixXd& positions,
                std::optional<Eigen::Matrix3d> cell, std::array<bool, 3> pbc) {
                 rhocast::CoefficientGradients g;
                 {
                     py::gil_scoped_release release;
                     g = p.coefficient_gradients(numbers, positions, cell_or_zero(cell), pbc);
                 }
                 return py::make_tuple(g.first, g.atoms, g.blocks);
             },
             py::arg("numbers"), py::arg("positions"), py::arg("cell") = py::none(),
             py::arg("pbc") = std::array<bool, 3>{false, false, false},
             "(first, atoms, blocks): atom i's coefficients depend on atoms[first[i]:first[i+1]] (i first); "
             "blocks[i] (n_coef(i), 3 n_dep(i)), column 3 k + x = d c_i / d R_{atoms[first[i] + k], x} per Bohr.")
        .def("moment_matrix", &DensityPredictor::moment_matrix, py::arg("numbers"), py::arg("positions"),
             "M (3, n_coef), e Bohr per unit coefficient about the origin: dipole = sum Z R - M c.")
        .def("function_integrals", &DensityPredictor::function_integrals, py::arg("numbers"))
        .def("atomic_charges", &DensityPredictor::atomic_charges, py::arg("numbers"), py::arg("coefficients"))
        .def("dipole", &DensityPredictor::dipole, py::arg("numbers"), py::arg("positions"), py::arg("coefficients"),
             "e Bohr about the origin, positions in Bohr; no electron-count correction.");
}
