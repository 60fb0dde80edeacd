// Symmetric matrices stored as dense blocks between atom pairs (overlap and Coulomb metrics of an
// atom-centred basis). Only blocks with i <= j are stored; memory is linear in the number of atoms
// when the blocks are screened by distance.
#pragma once

#include <Eigen/Dense>
#include <cstddef>
#include <vector>

namespace rhocast {

class BlockSparseMatrix {
public:
    BlockSparseMatrix() = default;
    // block_sizes[i]: number of basis functions on atom i.
    explicit BlockSparseMatrix(std::vector<int> block_sizes);

    // Adds (accumulates) the block between atoms i <= j, of shape block_sizes[i] x block_sizes[j].
    void add_block(int i, int j, const Eigen::MatrixXd& block);
    void add_block(int i, int j, Eigen::MatrixXd&& block);  // takes the storage: no copy

    int n_atoms() const { return static_cast<int>(sizes_.size()); }
    int rows() const { return offsets_.empty() ? 0 : offsets_.back(); }
    const std::vector<int>& block_sizes() const { return sizes_; }
    const std::vector<int>& offsets() const { return offsets_; }  // length n_atoms + 1
    std::size_t n_blocks() const { return blocks_.size(); }
    std::size_t memory_bytes() const;

    // y = A x, OpenMP over block rows.
    Eigen::VectorXd multiply(const Eigen::Ref<const Eigen::VectorXd>& x) const;
    // Y = A X for several right-hand sides (columns of X).
    Eigen::MatrixXd multiply_columns(const Eigen::Ref<const Eigen::MatrixXd>& x) const;
    double bilinear(const Eigen::Ref<const Eigen::VectorXd>& x,
                    const Eigen::Ref<const Eigen::VectorXd>& y) const;

    // The block (i, j) for any order of i and j; a zero matrix when it was screened out.
    Eigen::MatrixXd block(int i, int j) const;
    bool has_block(int i, int j) const;
    const Eigen::MatrixXd& diagonal_block(int i) const;
    Eigen::VectorXd diagonal() const;
    Eigen::MatrixXd to_dense() const;

    struct Entry {
        int i, j;
        Eigen::MatrixXd data;
    };
    const std::vector<Entry>& entries() const { return blocks_; }

private:
    int find(int i, int j) const;  // index into blocks_ of (min, max), or -1
    std::vector<int> sizes_;
    std::vector<int> offsets_;
    std::vector<Entry> blocks_;
    std::vector<std::vector<int>> row_blocks_;  // per atom i: indices of blocks (i, j >= i)
    std::vector<std::vector<int>> col_blocks_;  // per atom j: indices of blocks (i < j, j)
    std::vector<int> diagonal_index_;
};

}  // namespace rhocast
