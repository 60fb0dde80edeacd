// The density regression (METHOD.md sections 4-5): the loss of predicted coefficients in each
// structure's metric O_s (overlap or Coulomb), its gradient and Hessian-vector products.
//
//   c_s = Psi_s w (+ baseline),  L(w) = (1/N) sum_s r_s^T O_s r_s + eta |w|^2,  r_s = Psi_s w - t_s
//
// Psi_s is never formed as a matrix: each shell of each atom maps a block of weights (one per
// species, lambda and radial channel n) through that atom's (2 lambda + 1) x D projected kernel.
// A Regression object holds one shard of structures and returns *partial sums* over them; with
// several shards (e.g. MPI ranks) the caller all-reduces the vectors of each iteration.
//
// Psi may be stored in float32 (half the memory of the fit's largest part); every product with it
// accumulates in double, so only Psi's own rounding (relative 6e-8) enters the loss.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "rhocast/block_sparse.hpp"

namespace rhocast {

struct ShellMap {
    int coef_start;    // first coefficient of the shell in the structure's canonical vector
    int l;             // 2 l + 1 coefficients
    int weight_start;  // first weight of the shell's (species, lambda = l, n) block
    int psi;           // index into TrainingStructure::psi: the atom's (2 l + 1) x D kernel
};

struct TrainingStructure {
    BlockSparseMatrix metric;           // O_s
    Eigen::VectorXd target;             // t_s = c_s - baseline_s
    std::vector<ShellMap> shells;
    std::vector<Eigen::MatrixXd> psi;   // given in double; emptied when stored in float32
    std::vector<Eigen::MatrixXf> psi32; // filled by add_structure for PsiPrecision::Float32
};

enum class PsiPrecision { Float64, Float32 };

class Regression {
public:
    Regression(int n_weights, double regularization, PsiPrecision psi_precision = PsiPrecision::Float64)
        : n_weights_(n_weights), eta_(regularization), precision_(psi_precision) {}

    void add_structure(TrainingStructure s);
    int n_structures() const { return static_cast<int>(structures_.size()); }
    int n_weights() const { return n_weights_; }
    PsiPrecision psi_precision() const { return precision_; }
    // Bytes held: all of it, and Psi's part (the rest is the metrics, targets and shell maps).
    std::size_t memory_bytes() const;
    std::size_t psi_memory_bytes() const;

    // Scale 1/N of the loss; N counts structures over all shards (set it when sharding).
    void set_total_structures(int n) { n_total_ = n; }

    Eigen::VectorXd predict(int structure, const Eigen::Ref<const Eigen::VectorXd>& w) const;
    // Shard sums (the eta terms are added once, by the shard with add_regularization = true).
    double loss(const Eigen::Ref<const Eigen::VectorXd>& w, bool add_regularization = true) const;
    Eigen::VectorXd gradient(const Eigen::Ref<const Eigen::VectorXd>& w, bool add_regularization = true) const;
    Eigen::VectorXd hessian_product(const Eigen::Ref<const Eigen::VectorXd>& d, bool add_regularization = true) const;
    // b with H w = b at the minimum: (2/N) sum_s Psi_s^T O_s t_s.
    Eigen::VectorXd rhs() const;
    // Dense Hessian (only for the direct solver of small problems).
    Eigen::MatrixXd hessian(bool add_regularization = true) const;
    // Block-Jacobi preconditioner: per weight block [start, start + size) (disjoint ranges, each may hold
    // several (species, lambda, n) channels), the Hessian restricted to the block and to the
    // atom-diagonal metric blocks (2/N sum_atoms Psi^T O_ii Psi + 2 eta). Returns the blocks.
    std::vector<Eigen::MatrixXd> jacobi_blocks(const std::vector<int>& block_starts,
                                               const std::vector<int>& block_sizes,
                                               bool add_regularization = true) const;

private:
    Eigen::VectorXd apply_psi(const TrainingStructure& s, const Eigen::Ref<const Eigen::VectorXd>& w) const;
    void apply_psi_transpose(const TrainingStructure& s, const Eigen::Ref<const Eigen::VectorXd>& r,
                             Eigen::Ref<Eigen::VectorXd> out) const;
    double scale() const { return 2.0 / (n_total_ > 0 ? n_total_ : n_structures()); }

    int n_weights_;
    double eta_;
    PsiPrecision precision_;
    int n_total_ = 0;
    std::vector<TrainingStructure> structures_;
};

}  // namespace rhocast
