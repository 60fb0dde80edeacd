#include "rhocast/block_sparse.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace rhocast {

BlockSparseMatrix::BlockSparseMatrix(std::vector<int> block_sizes)
    : sizes_(std::move(block_sizes)), offsets_(sizes_.size() + 1, 0),
      row_blocks_(sizes_.size()), col_blocks_(sizes_.size()), diagonal_index_(sizes_.size(), -1) {
    for (std::size_t i = 0; i < sizes_.size(); ++i) offsets_[i + 1] = offsets_[i] + sizes_[i];
}

int BlockSparseMatrix::find(int i, int j) const {
    if (i > j) std::swap(i, j);
    for (int b : row_blocks_[i])
        if (blocks_[b].j == j) return b;
    return -1;
}

void BlockSparseMatrix::add_block(int i, int j, const Eigen::MatrixXd& block) {
    add_block(i, j, Eigen::MatrixXd(block));
}

void BlockSparseMatrix::add_block(int i, int j, Eigen::MatrixXd&& block) {
    if (i < 0 || j < 0 || i >= n_atoms() || j >= n_atoms() || i > j)
        throw std::invalid_argument("add_block needs 0 <= i <= j < n_atoms");
    if (block.rows() != sizes_[i] || block.cols() != sizes_[j])
        throw std::invalid_argument("block (" + std::to_string(i) + ", " + std::to_string(j) +
                                    ") has the wrong shape");
    int b = find(i, j);
    if (b >= 0) {
        blocks_[b].data += block;
        return;
    }
    blocks_.push_back({i, j, std::move(block)});
    b = static_cast<int>(blocks_.size()) - 1;
    row_blocks_[i].push_back(b);
    if (i == j) diagonal_index_[i] = b;
    else col_blocks_[j].push_back(b);
}

std::size_t BlockSparseMatrix::memory_bytes() const {
    std::size_t n = 0;
    for (const auto& e : blocks_) n += sizeof(double) * e.data.size() + sizeof(Entry);
    return n;
}

Eigen::MatrixXd BlockSparseMatrix::multiply_columns(const Eigen::Ref<const Eigen::MatrixXd>& x) const {
    if (x.rows() != rows()) throw std::invalid_argument("multiply: wrong vector length");
    Eigen::MatrixXd y = Eigen::MatrixXd::Zero(rows(), x.cols());
    // Row-wise gather (upper blocks from the row list, lower ones as transposes from the column
    // list), so that every thread writes only its own rows: no reduction buffers.
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n_atoms(); ++i) {
        auto yi = y.middleRows(offsets_[i], sizes_[i]);
        for (int b : row_blocks_[i]) {
            const auto& e = blocks_[b];
            yi.noalias() += e.data * x.middleRows(offsets_[e.j], sizes_[e.j]);
        }
        for (int b : col_blocks_[i]) {
            const auto& e = blocks_[b];
            yi.noalias() += e.data.transpose() * x.middleRows(offsets_[e.i], sizes_[e.i]);
        }
    }
    return y;
}

Eigen::VectorXd BlockSparseMatrix::multiply(const Eigen::Ref<const Eigen::VectorXd>& x) const {
    return multiply_columns(x).col(0);
}

double BlockSparseMatrix::bilinear(const Eigen::Ref<const Eigen::VectorXd>& x,
                                   const Eigen::Ref<const Eigen::VectorXd>& y) const {
    return x.dot(multiply(y));
}

bool BlockSparseMatrix::has_block(int i, int j) const { return find(i, j) >= 0; }

Eigen::MatrixXd BlockSparseMatrix::block(int i, int j) const {
    int b = find(i, j);
    if (b < 0) return Eigen::MatrixXd::Zero(sizes_[i], sizes_[j]);
    return i <= j ? blocks_[b].data : Eigen::MatrixXd(blocks_[b].data.transpose());
}

const Eigen::MatrixXd& BlockSparseMatrix::diagonal_block(int i) const {
    if (diagonal_index_[i] < 0)
        throw std::runtime_error("diagonal block " + std::to_string(i) + " is missing");
    return blocks_[diagonal_index_[i]].data;
}

Eigen::VectorXd BlockSparseMatrix::diagonal() const {
    Eigen::VectorXd d(rows());
    for (int i = 0; i < n_atoms(); ++i) d.segment(offsets_[i], sizes_[i]) = diagonal_block(i).diagonal();
    return d;
}

Eigen::MatrixXd BlockSparseMatrix::to_dense() const {
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(rows(), rows());
    for (const auto& e : blocks_) {
        a.block(offsets_[e.i], offsets_[e.j], sizes_[e.i], sizes_[e.j]) = e.data;
        if (e.i != e.j)
            a.block(offsets_[e.j], offsets_[e.i], sizes_[e.j], sizes_[e.i]) = e.data.transpose();
    }
    return a;
}

}  // namespace rhocast
