#include "rhocast/regression.hpp"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <type_traits>

namespace rhocast {

namespace {

// Calls f with the structure's Psi list (std::vector of MatrixXd or MatrixXf, as stored): the products
// below are written once for both precisions.
template <class F>
void visit_psi(const TrainingStructure& s, F&& f) {
    if (s.psi32.empty())
        f(s.psi);
    else
        f(s.psi32);
}

// out = p x, accumulated in double (p float32 is widened coefficient by coefficient, no temporary).
template <class P>
void psi_times(const P& p, const Eigen::Ref<const Eigen::VectorXd>& x, Eigen::Ref<Eigen::VectorXd> out) {
    if constexpr (std::is_same_v<typename P::Scalar, double>)
        out.noalias() = p * x;
    else
        out.noalias() = p.template cast<double>().lazyProduct(x);
}

// out += p^T r, accumulated in double.
template <class P>
void add_psi_transpose_times(const P& p, const Eigen::Ref<const Eigen::VectorXd>& r, Eigen::Ref<Eigen::VectorXd> out) {
    if constexpr (std::is_same_v<typename P::Scalar, double>)
        out.noalias() += p.transpose() * r;
    else
        out.noalias() += p.template cast<double>().transpose().lazyProduct(r);
}

}  // namespace

void Regression::add_structure(TrainingStructure s) {
    if (s.target.size() != s.metric.rows()) throw std::invalid_argument("target and metric sizes differ");
    for (const auto& sh : s.shells) {
        if (sh.psi < 0 || sh.psi >= static_cast<int>(s.psi.size())) throw std::invalid_argument("bad psi index");
        const auto& p = s.psi[sh.psi];
        if (p.rows() != 2 * sh.l + 1 || sh.weight_start < 0 || sh.weight_start + p.cols() > n_weights_ ||
            sh.coef_start < 0 || sh.coef_start + 2 * sh.l + 1 > s.target.size())
            throw std::invalid_argument("shell map inconsistent with psi, weights or coefficients");
    }
    if (precision_ == PsiPrecision::Float32) {
        s.psi32.reserve(s.psi.size());
        for (const auto& p : s.psi) s.psi32.push_back(p.cast<float>());
        std::vector<Eigen::MatrixXd>().swap(s.psi);
    }
    structures_.push_back(std::move(s));
}

std::size_t Regression::psi_memory_bytes() const {
    std::size_t n = 0;
    for (const auto& s : structures_) {
        for (const auto& p : s.psi) n += sizeof(double) * p.size();
        for (const auto& p : s.psi32) n += sizeof(float) * p.size();
    }
    return n;
}

std::size_t Regression::memory_bytes() const {
    std::size_t n = psi_memory_bytes();
    for (const auto& s : structures_)
        n += s.metric.memory_bytes() + sizeof(double) * s.target.size() + sizeof(ShellMap) * s.shells.size();
    return n;
}

Eigen::VectorXd Regression::apply_psi(const TrainingStructure& s, const Eigen::Ref<const Eigen::VectorXd>& w) const {
    Eigen::VectorXd c = Eigen::VectorXd::Zero(s.target.size());
    visit_psi(s, [&](const auto& psi) {
        for (const auto& sh : s.shells) {
            const auto& p = psi[sh.psi];
            psi_times(p, w.segment(sh.weight_start, p.cols()), c.segment(sh.coef_start, 2 * sh.l + 1));
        }
    });
    return c;
}

void Regression::apply_psi_transpose(const TrainingStructure& s, const Eigen::Ref<const Eigen::VectorXd>& r,
                                     Eigen::Ref<Eigen::VectorXd> out) const {
    visit_psi(s, [&](const auto& psi) {
        for (const auto& sh : s.shells) {
            const auto& p = psi[sh.psi];
            add_psi_transpose_times(p, r.segment(sh.coef_start, 2 * sh.l + 1), out.segment(sh.weight_start, p.cols()));
        }
    });
}

Eigen::VectorXd Regression::predict(int structure, const Eigen::Ref<const Eigen::VectorXd>& w) const {
    return apply_psi(structures_.at(structure), w);
}

double Regression::loss(const Eigen::Ref<const Eigen::VectorXd>& w, bool add_regularization) const {
    // Per-structure terms summed in a fixed order: results do not depend on the thread count.
    std::vector<double> terms(n_structures());
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < n_structures(); ++k) {
        const auto& s = structures_[k];
        const Eigen::VectorXd r = apply_psi(s, w) - s.target;
        terms[k] = r.dot(s.metric.multiply(r));
    }
    double total = 0.0;
    for (double t : terms) total += t;
    total *= 0.5 * scale();
    if (add_regularization) total += eta_ * w.squaredNorm();
    return total;
}

namespace {

// Sum of per-thread vectors: each thread accumulates its structures privately (no atomics). A static
// schedule and a fixed order of the final sum make repeated runs bitwise identical.
template <class F>
Eigen::VectorXd reduce_over_structures(int n_structures, int n_weights, F&& accumulate) {
    std::vector<Eigen::VectorXd> partial(omp_get_max_threads(), Eigen::VectorXd::Zero(n_weights));
#pragma omp parallel
    {
        Eigen::VectorXd& mine = partial[omp_get_thread_num()];
#pragma omp for schedule(static)
        for (int k = 0; k < n_structures; ++k) accumulate(k, mine);
    }
    Eigen::VectorXd out = Eigen::VectorXd::Zero(n_weights);
    for (const auto& p : partial) out += p;
    return out;
}

}  // namespace

Eigen::VectorXd Regression::gradient(const Eigen::Ref<const Eigen::VectorXd>& w, bool add_regularization) const {
    Eigen::VectorXd g = reduce_over_structures(n_structures(), n_weights_, [&](int k, Eigen::VectorXd& acc) {
        const auto& s = structures_[k];
        const Eigen::VectorXd r = apply_psi(s, w) - s.target;
        apply_psi_transpose(s, s.metric.multiply(r), acc);
    });
    g *= scale();
    if (add_regularization) g += 2.0 * eta_ * w;
    return g;
}

Eigen::VectorXd Regression::hessian_product(const Eigen::Ref<const Eigen::VectorXd>& d, bool add_regularization) const {
    Eigen::VectorXd h = reduce_over_structures(n_structures(), n_weights_, [&](int k, Eigen::VectorXd& acc) {
        const auto& s = structures_[k];
        apply_psi_transpose(s, s.metric.multiply(apply_psi(s, d)), acc);
    });
    h *= scale();
    if (add_regularization) h += 2.0 * eta_ * d;
    return h;
}

Eigen::VectorXd Regression::rhs() const {
    Eigen::VectorXd b = reduce_over_structures(n_structures(), n_weights_, [&](int k, Eigen::VectorXd& acc) {
        const auto& s = structures_[k];
        apply_psi_transpose(s, s.metric.multiply(s.target), acc);
    });
    return b * scale();
}

Eigen::MatrixXd Regression::hessian(bool add_regularization) const {
    // Structure by structure, H = (2/N) sum_s Psi_s^T O_s Psi_s. Psi_s is sparse (a shell touches only
    // its own weight block), so M = O_s Psi_s is built shell column by shell column from the metric's
    // atom blocks and Psi_s^T M shell row by shell row: cost n_coef (n_coef_near D + D n_weights) per
    // structure, against n_weights Hessian-vector products for the column-by-column build.
    const int nw = n_weights_;
    std::vector<Eigen::MatrixXd> partial(omp_get_max_threads());
#pragma omp parallel
    {
        Eigen::MatrixXd& mine = partial[omp_get_thread_num()];
        mine = Eigen::MatrixXd::Zero(nw, nw);
        Eigen::MatrixXd m;
#pragma omp for schedule(static)
        for (int k = 0; k < n_structures(); ++k) {
            const auto& s = structures_[k];
            const auto& off = s.metric.offsets();
            std::vector<std::vector<int>> shells_of(s.metric.n_atoms());
            for (int q = 0; q < static_cast<int>(s.shells.size()); ++q) {
                const int atom = static_cast<int>(
                    std::upper_bound(off.begin(), off.end(), s.shells[q].coef_start) - off.begin()) - 1;
                shells_of[atom].push_back(q);
            }
            m.setZero(s.target.size(), nw);
            visit_psi(s, [&](const auto& psi) {
                // M[rows of i, block of shell c on j] += O_ij[:, c] psi_c, for each stored block and its mirror.
                auto add = [&](int i, int j, const Eigen::MatrixXd& o_ij, bool transpose) {
                    for (int q : shells_of[j]) {
                        const auto& c = s.shells[q];
                        const auto& p = psi[c.psi].template cast<double>();
                        const int local = c.coef_start - off[j];
                        if (transpose)
                            m.block(off[i], c.weight_start, o_ij.cols(), p.cols()).noalias() +=
                                o_ij.middleRows(local, 2 * c.l + 1).transpose() * p;
                        else
                            m.block(off[i], c.weight_start, o_ij.rows(), p.cols()).noalias() +=
                                o_ij.middleCols(local, 2 * c.l + 1) * p;
                    }
                };
                for (const auto& e : s.metric.entries()) {
                    add(e.i, e.j, e.data, false);
                    if (e.i != e.j) add(e.j, e.i, e.data, true);
                }
                for (const auto& a : s.shells) {
                    const auto& p = psi[a.psi].template cast<double>();
                    mine.middleRows(a.weight_start, p.cols()).noalias() +=
                        p.transpose() * m.middleRows(a.coef_start, 2 * a.l + 1);
                }
            });
        }
    }
    // Summed into the first thread's matrix in thread order (deterministic), each other freed once added,
    // and symmetrised in place: one n_weights^2 matrix beyond the per-thread ones, none after.
    Eigen::MatrixXd h = std::move(partial[0]);
    for (std::size_t t = 1; t < partial.size(); ++t) {
        h += partial[t];
        Eigen::MatrixXd().swap(partial[t]);
    }
    h *= scale();
    if (add_regularization) h.diagonal().array() += 2.0 * eta_;
    for (int j = 0; j < nw; ++j)
        for (int i = 0; i < j; ++i) h(i, j) = h(j, i) = 0.5 * (h(i, j) + h(j, i));
    return h;
}

std::vector<Eigen::MatrixXd> Regression::jacobi_blocks(const std::vector<int>& block_starts,
                                                       const std::vector<int>& block_sizes,
                                                       bool add_regularization) const {
    const int nb = static_cast<int>(block_starts.size());
    // The block of every weight (-1: none).
    std::vector<int> block_of(n_weights_, -1);
    for (int b = 0; b < nb; ++b)
        for (int k = block_starts[b]; k < block_starts[b] + block_sizes[b]; ++k) {
            if (k < 0 || k >= n_weights_ || block_of[k] >= 0)
                throw std::invalid_argument("preconditioner blocks must be disjoint ranges of weights");
            block_of[k] = b;
        }
    std::vector<std::vector<Eigen::MatrixXd>> partial(omp_get_max_threads());
#pragma omp parallel
    {
        std::vector<Eigen::MatrixXd>& mine = partial[omp_get_thread_num()];
        mine.resize(nb);
        for (int b = 0; b < nb; ++b) mine[b] = Eigen::MatrixXd::Zero(block_sizes[b], block_sizes[b]);
#pragma omp for schedule(static)
        for (int k = 0; k < n_structures(); ++k) {
            const auto& s = structures_[k];
            const auto& off = s.metric.offsets();
            // Shells of one atom are consecutive; every pair of them with the same l in the same block
            // is coupled through the atom's diagonal metric block (other l are orthogonal on one atom).
            std::size_t first = 0;
            while (first < s.shells.size()) {
                const int atom = static_cast<int>(
                    std::upper_bound(off.begin(), off.end(), s.shells[first].coef_start) - off.begin()) - 1;
                std::size_t last = first;
                while (last < s.shells.size() && s.shells[last].coef_start < off[atom + 1]) ++last;
                const Eigen::MatrixXd o = s.metric.diagonal_block(atom);
                visit_psi(s, [&](const auto& psi) {
                    for (std::size_t i = first; i < last; ++i) {
                        const auto& a = s.shells[i];
                        const int b = block_of[a.weight_start];
                        if (b < 0) continue;
                        const auto& pa = psi[a.psi].template cast<double>();
                        for (std::size_t j = first; j < last; ++j) {
                            const auto& c = s.shells[j];
                            if (c.l != a.l || block_of[c.weight_start] != b) continue;
                            const auto& pc = psi[c.psi].template cast<double>();
                            mine[b].block(a.weight_start - block_starts[b], c.weight_start - block_starts[b],
                                          pa.cols(), pc.cols()).noalias() +=
                                pa.transpose() *
                                o.block(a.coef_start - off[atom], c.coef_start - off[atom], 2 * a.l + 1, 2 * c.l + 1) *
                                pc;
                        }
                    }
                });
                first = last;
            }
        }
    }
    // Summed into the first thread's blocks in thread order (deterministic), the others freed once added:
    // the preconditioner is held once per thread, not once more for the sum.
    std::vector<Eigen::MatrixXd> blocks = std::move(partial[0]);
    for (std::size_t t = 1; t < partial.size(); ++t) {
        for (int b = 0; b < nb; ++b) blocks[b] += partial[t][b];
        std::vector<Eigen::MatrixXd>().swap(partial[t]);
    }
    for (int b = 0; b < nb; ++b) {
        blocks[b] *= scale();
        if (add_regularization) blocks[b].diagonal().array() += 2.0 * eta_;
    }
    return blocks;
}

}  // namespace rhocast
