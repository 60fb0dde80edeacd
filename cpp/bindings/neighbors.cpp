#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include "registry.hpp"
#include "rhocast/neighbors.hpp"

namespace py = pybind11;

RHOCAST_BINDING(neighbors) {
    m.def("neighbor_list",
          [](const Eigen::MatrixXd& positions, std::optional<Eigen::Matrix3d> cell, double cutoff) {
              std::vector<rhocast::NeighborPair> pairs;
              {
                  py::gil_scoped_release release;
                  pairs = rhocast::neighbor_list(positions, cell ? &*cell : nullptr, cutoff);
              }
              const py::ssize_t n = static_cast<py::ssize_t>(pairs.size());
              py::array_t<long> i(n), j(n), shifts({n, py::ssize_t(3)});
              py::array_t<double> d(n), vec({n, py::ssize_t(3)});
              auto pi = i.mutable_unchecked<1>(); auto pj = j.mutable_unchecked<1>();
              auto ps = shifts.mutable_unchecked<2>(); auto pd = d.mutable_unchecked<1>();
              auto pv = vec.mutable_unchecked<2>();
              for (py::ssize_t k = 0; k < n; ++k) {
                  pi(k) = pairs[k].i; pj(k) = pairs[k].j; pd(k) = pairs[k].distance;
                  for (int q = 0; q < 3; ++q) { ps(k, q) = pairs[k].shift[q]; pv(k, q) = pairs[k].vector[q]; }
              }
              return py::make_tuple(i, j, shifts, d, vec);
          },
          py::arg("positions"), py::arg("cell") = py::none(), py::arg("cutoff"),
          "(i, j, shifts, distances, vectors) of every pair closer than cutoff; cell rows = lattice vectors.");
}
