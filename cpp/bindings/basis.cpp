#include <pybind11/stl.h>

#include "registry.hpp"
#include "rhocast/basis.hpp"

namespace py = pybind11;

RHOCAST_BINDING(basis) {
    py::class_<rhocast::Shell>(m, "Shell")
        .def(py::init([](int l, std::vector<double> e, std::vector<double> c) {
                 if (e.size() != c.size())
                     throw std::invalid_argument("exponents and coefficients differ in length");
                 return rhocast::Shell{l, std::move(e), std::move(c)};
             }),
             py::arg("l"), py::arg("exponents"), py::arg("coefficients"))
        .def_readonly("l", &rhocast::Shell::l)
        .def_readonly("exponents", &rhocast::Shell::exponents)
        .def_readonly("coefficients", &rhocast::Shell::coefficients);
    py::class_<rhocast::Basis>(m, "Basis", "Shells of every element (see cpp/include/rhocast/basis.hpp).")
        .def(py::init<std::map<int, std::vector<rhocast::Shell>>>(), py::arg("shells"))
        .def("n_functions", &rhocast::Basis::n_functions, py::arg("atomic_number"))
        .def("has_element", &rhocast::Basis::has_element, py::arg("atomic_number"))
        .def_property_readonly("max_l", &rhocast::Basis::max_l);
}
