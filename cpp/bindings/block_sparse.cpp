#include <pybind11/eigen.h>
#include <pybind11/stl.h>

#include "registry.hpp"
#include "rhocast/block_sparse.hpp"

namespace py = pybind11;
using rhocast::BlockSparseMatrix;

RHOCAST_BINDING(block_sparse) {
    py::class_<BlockSparseMatrix>(m, "BlockSparseMatrix",
                                  "Symmetric matrix of dense atom-pair blocks (upper blocks stored).")
        .def(py::init<std::vector<int>>(), py::arg("block_sizes"))
        .def("add_block", py::overload_cast<int, int, const Eigen::MatrixXd&>(&BlockSparseMatrix::add_block),
             py::arg("i"), py::arg("j"), py::arg("block"))
        .def_property_readonly("n_atoms", &BlockSparseMatrix::n_atoms)
        .def_property_readonly("shape", [](const BlockSparseMatrix& a) {
            return py::make_tuple(a.rows(), a.rows());
        })
        .def_property_readonly("block_sizes", &BlockSparseMatrix::block_sizes)
        .def_property_readonly("offsets", &BlockSparseMatrix::offsets)
        .def_property_readonly("n_blocks", &BlockSparseMatrix::n_blocks)
        .def_property_readonly("memory_bytes", &BlockSparseMatrix::memory_bytes)
        .def("matvec",
             [](const BlockSparseMatrix& a, const Eigen::MatrixXd& x) {
                 py::gil_scoped_release release;
                 return a.multiply_columns(x);
             },
             py::arg("x"), "A @ x for x of shape (n,) or (n, k); returns (n, k).")
        .def("bilinear", &BlockSparseMatrix::bilinear, py::arg("x"), py::arg("y"))
        .def("block", &BlockSparseMatrix::block, py::arg("i"), py::arg("j"))
        .def("has_block", &BlockSparseMatrix::has_block, py::arg("i"), py::arg("j"))
        .def("diagonal_block", &BlockSparseMatrix::diagonal_block, py::arg("i"))
        .def("diagonal", &BlockSparseMatrix::diagonal)
        .def("to_dense", &BlockSparseMatrix::to_dense)
        .def("entries", [](const BlockSparseMatrix& a) {
            py::list out;
            for (const auto& e : a.entries()) out.append(py::make_tuple(e.i, e.j, e.data));
            return out;
        }, "List of (i, j, block) for the stored blocks, i <= j.");
}
