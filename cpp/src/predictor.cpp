#include "rhocast/predictor.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace rhocast {

namespace {

std::string shape(const Eigen::MatrixXd& m) {
    return "(" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + ")";
}

}  // namespace

DensityPredictor::DensityPredictor(ModelData model) : model_(std::move(model)), soap_(model_.descriptor) {
    const int max_lambda = model_.descriptor.max_lambda;
    if (!(model_.zeta >= 1.0)) throw std::invalid_argument("zeta must be >= 1");
    if (model_.selected.empty()) model_.selected.assign(max_lambda + 1, {});
    if (static_cast<int>(model_.selected.size()) != max_lambda + 1)
        throw std::invalid_argument("selected columns: expected one list per lambda = 0.." + std::to_string(max_lambda));
    for (int lam = 0; lam <= max_lambda; ++lam)
        for (int col : model_.selected[lam])
            if (col < 0 || col >= soap_.n_features(lam))
                throw std::invalid_argument("selected column " + std::to_string(col) + " of lambda " +
                                            std::to_string(lam) + " is outside 0.." +
                                            std::to_string(soap_.n_features(lam) - 1));
    if (model_.species.size() != model_.descriptor.species.size())
        throw std::invalid_argument("the model needs one SpeciesModel per descriptor species");
    species_index_.assign(119, -1);
    blocks_.resize(model_.species.size());
    int start = 0;
    for (std::size_t s = 0; s < model_.species.size(); ++s) {
        const SpeciesModel& sm = model_.species[s];
        const std::string who = "species Z=" + std::to_string(sm.atomic_number);
        if (sm.atomic_number != model_.descriptor.species[s])
            throw std::invalid_argument("species models must follow the descriptor's species (ascending); got " + who);
        species_index_[sm.atomic_number] = static_cast<int>(s);
        int n_functions = 0;
        for (const auto& sh : sm.shells) {
            if (sh.l > max_lambda) throw std::invalid_argument(who + ": a shell has l > max_lambda");
            n_functions += 2 * sh.l + 1;
        }
        if (sm.baseline.size() != n_functions)
            throw std::invalid_argument(who + ": baseline has " + std::to_string(sm.baseline.size()) +
                                        " entries for " + std::to_string(n_functions) + " functions");
        if (static_cast<int>(sm.sparse_features.size()) != max_lambda + 1 ||
            static_cast<int>(sm.projectors.size()) != max_lambda + 1)
            throw std::invalid_argument(who + ": sparse features and projectors need one entry per lambda");
        const long n_sparse = sm.sparse_features[0].rows();
        blocks_[s].resize(max_lambda + 1);
        for (int lam = 0; lam <= max_lambda; ++lam) {
            const int width = model_.selected[lam].empty() ? soap_.n_features(lam)
                                                            : static_cast<int>(model_.selected[lam].size());
            const auto& f = sm.sparse_features[lam];
            Block& b = blocks_[s][lam];
            b.lambda = lam;
            for (const auto& sh : sm.shells)
                if (sh.l == lam) b.weight_start.push_back(-1);
            // A lambda without shells of this species enters no kernel but lambda = 0's: its features may be empty.
            if (b.weight_start.empty() && lam > 0 && f.size() == 0) continue;
            if (f.cols() != width || f.rows() != n_sparse * (2 * lam + 1))
                throw std::invalid_argument(who + ": sparse features of lambda " + std::to_string(lam) + " are " +
                                            shape(f) + ", expected (" + std::to_string(n_sparse * (2 * lam + 1)) +
                                            ", " + std::to_string(width) + ")");
            const auto& v = sm.projectors[lam];
            if (b.weight_start.empty()) continue;
            if (v.rows() != f.rows())
                throw std::invalid_argument(who + ": projector of lambda " + std::to_string(lam) + " is " + shape(v) +
                                            ", expected " + std::to_string(f.rows()) + " rows");
            b.size = static_cast<int>(v.cols());
            for (auto& w : b.weight_start) {
                w = start;
                start += b.size;
            }
        }
    }
    n_weights_ = start;
    needed_lambdas_.resize(blocks_.size());
    for (std::size_t s = 0; s < blocks_.size(); ++s)
        for (const Block& b : blocks_[s]) needed_lambdas_[s].push_back(b.lambda == 0 || !b.weight_start.empty());
    if (model_.weights.size() != 0) set_weights(model_.weights);
}

void DensityPredictor::set_weights(const Eigen::Ref<const Eigen::VectorXd>& weights) {
    if (weights.size() != n_weights_)
        throw std::invalid_argument("the model has " + std::to_string(n_weights_) + " weights, got " +
                                    std::to_string(weights.size()));
    model_.weights = weights;
    update_projected_weights();
}

void DensityPredictor::update_projected_weights() {
    for (std::size_t s = 0; s < blocks_.size(); ++s)
        for (auto& b : blocks_[s]) {
            if (b.weight_start.empty()) continue;
            Eigen::MatrixXd w(b.size, b.weight_start.size());
            for (std::size_t n = 0; n < b.weight_start.size(); ++n) w.col(n) = model_.weights.segment(b.weight_start[n], b.size);
            b.projected_weights = model_.species[s].projectors[b.lambda] * w;
            const Eigen::MatrixXd& f = model_.species[s].sparse_features[b.lambda];
            const int width = 2 * b.lambda + 1, n_sparse = static_cast<int>(f.rows()) / width;
            const int n_cols = static_cast<int>(f.cols()), n_shells = static_cast<int>(b.weight_start.size());
            b.through_kernel = n_shells >= width * width;
            b.environment_weights.resize(n_sparse, static_cast<long>(n_cols) * n_shells);
            for (int j = 0; j < n_sparse; ++j) {
                const Eigen::MatrixXd t =
                    f.middleRows(j * width, width).transpose() * b.projected_weights.middleRows(j * width, width);
                b.environment_weights.row(j) = Eigen::Map<const Eigen::RowVectorXd>(t.data(), t.size());
            }
        }
}

const SpeciesModel& DensityPredictor::species_model(int z) const {
    if (z < 1 || z > 118 || species_index_[z] < 0)
        throw std::invalid_argument("atomic number " + std::to_string(z) + " is not among the model's species");
    return model_.species[species_index_[z]];
}

Neighborhoods DensityPredictor::neighborhoods(const std::vector<int>& numbers,
                                              const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                              const Eigen::Matrix3d& cell, const std::array<bool, 3>& pbc) const {
    const bool all = pbc[0] && pbc[1] && pbc[2], none = !pbc[0] && !pbc[1] && !pbc[2];
    if (!all && !none) throw std::invalid_argument("pbc must be all true (a 3D-periodic cell) or all false (a molecule)");
    if (positions.rows() != static_cast<long>(numbers.size()) || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    const Eigen::MatrixXd angstrom = positions * kBohrAngstrom;
    const Eigen::Matrix3d cell_angstrom = cell * kBohrAngstrom;
    return soap_.neighborhoods(numbers, angstrom, all ? &cell_angstrom : nullptr);
}

std::vector<int> DensityPredictor::offsets(const std::vector<int>& numbers) const {
    std::vector<int> off(numbers.size() + 1, 0);
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        int n = 0;
        for (const auto& sh : species_model(numbers[a]).shells) n += 2 * sh.l + 1;
        off[a + 1] = off[a] + n;
    }
    return off;
}

int DensityPredictor::n_coefficients(const std::vector<int>& numbers) const { return offsets(numbers).back(); }

Eigen::MatrixXd DensityPredictor::kernel(const SpeciesModel& sm, const Eigen::MatrixXd& feats,
                                         const Eigen::RowVectorXd& scales, int lambda) const {
    Eigen::MatrixXd k = feats * sm.sparse_features[lambda].transpose();  // (2 lam + 1) x M (2 lam + 1)
    if (model_.zeta != 1.0) {
        const int w = 2 * lambda + 1;
        for (long j = 0; j < scales.size(); ++j) k.middleCols(j * w, w) *= scales[j];
    }
    return k;
}

Eigen::RowVectorXd DensityPredictor::environment_scales(const SpeciesModel& sm, const Eigen::MatrixXd& feats0) const {
    Eigen::RowVectorXd k0 = feats0 * sm.sparse_features[0].transpose();
    if (model_.zeta == 1.0) return Eigen::RowVectorXd::Ones(k0.size());
    for (long j = 0; j < k0.size(); ++j) k0[j] = std::pow(k0[j], model_.zeta - 1.0);
    return k0;
}

Eigen::VectorXd DensityPredictor::predict(const std::vector<int>& numbers,
                                          const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                          const Eigen::Matrix3d& cell, const std::array<bool, 3>& pbc) const {
    if (n_weights_ > 0 && model_.weights.size() == 0) throw std::logic_error("the model has no weights yet");
    const std::vector<int> off = offsets(numbers);
    const Neighborhoods env = neighborhoods(numbers, positions, cell, pbc);
    Eigen::VectorXd c(off.back());
    // Fixed chunks of at most kChunk atoms of one species, in atom order.
    std::vector<std::vector<int>> chunks;
    for (std::size_t s = 0; s < model_.species.size(); ++s) {
        std::vector<int> chunk;
        for (std::size_t a = 0; a < numbers.size(); ++a) {
            if (species_index_[numbers[a]] != static_cast<int>(s)) continue;
            chunk.push_back(static_cast<int>(a));
            if (static_cast<int>(chunk.size()) == kChunk) chunks.push_back(std::move(chunk)), chunk.clear();
        }
        if (!chunk.empty()) chunks.push_back(std::move(chunk));
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < static_cast<long>(chunks.size()); ++k) {
        const std::vector<int>& atoms = chunks[k];
        const int s = species_index_[numbers[atoms[0]]];
        const SpeciesModel& sm = model_.species[s];
        const auto& blocks = blocks_[s];
        const int n = static_cast<int>(atoms.size());
        std::vector<std::vector<Eigen::MatrixXd>> feats(n);
        Eigen::MatrixXd scales(n, sm.sparse_features[0].rows());
        for (int r = 0; r < n; ++r) {
            feats[r] = soap_.center_features(atoms[r], numbers, env, &model_.selected, &needed_lambdas_[s]);
            scales.row(r) = environment_scales(sm, feats[r][0]);
        }
        std::vector<std::vector<Eigen::MatrixXd>> per_lambda(n, std::vector<Eigen::MatrixXd>(blocks.size()));
        Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> summed;
        for (const auto& b : blocks) {
            if (b.weight_start.empty()) continue;
            if (b.through_kernel) {
                for (int r = 0; r < n; ++r)
                    per_lambda[r][b.lambda].noalias() =
                        kernel(sm, feats[r][b.lambda], scales.row(r), b.lambda) * b.projected_weights;
                continue;
            }
            summed.noalias() = scales * b.environment_weights;  // row r: sum_j k_rj T_j
            const int n_shells = static_cast<int>(b.weight_start.size());
            const long n_cols = b.environment_weights.cols() / n_shells;
            for (int r = 0; r < n; ++r)
                per_lambda[r][b.lambda].noalias() =
                    feats[r][b.lambda] * Eigen::Map<const Eigen::MatrixXd>(summed.row(r).data(), n_cols, n_shells);
        }
        for (int r = 0; r < n; ++r) {
            const int a = atoms[r];
            std::vector<int> seen(blocks.size(), 0);
            int pos = off[a];
            for (const auto& sh : sm.shells) {
                c.segment(pos, 2 * sh.l + 1) = per_lambda[r][sh.l].col(seen[sh.l]++);
                pos += 2 * sh.l + 1;
            }
            c.segment(off[a], off[a + 1] - off[a]) += sm.baseline;
        }
    }
    return c;
}

CoefficientGradients DensityPredictor::coefficient_gradients(const std::vector<int>& numbers,
                                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                                             const Eigen::Matrix3d& cell,
                                                             const std::array<bool, 3>& pbc) const {
    if (n_weights_ > 0 && model_.weights.size() == 0) throw std::logic_error("the model has no weights yet");
    const std::vector<int> off = offsets(numbers);
    const Neighborhoods env = neighborhoods(numbers, positions, cell, pbc);
    const long n_atoms = static_cast<long>(numbers.size());
    CoefficientGradients out;
    out.blocks.resize(n_atoms);
    std::vector<std::vector<int>> depends(n_atoms);
#pragma omp parallel for schedule(dynamic, 1)
    for (long a = 0; a < n_atoms; ++a) {
        const int s = species_index_[numbers[a]];
        const SpeciesModel& sm = model_.species[s];
        const FeatureGradients fg = soap_.center_feature_gradients(static_cast<int>(a), numbers, env, &model_.selected);
        const long n_dir = 3 * static_cast<long>(fg.atoms.size());
        // d k_ij = (zeta - 1) (p_i^0 . s_j^0)^(zeta - 2) s_j^0 . d p_i^0
        const Eigen::MatrixXd& s0 = sm.sparse_features[0];  // M x F0
        const Eigen::RowVectorXd scales = environment_scales(sm, fg.values[0]);
        Eigen::MatrixXd d_scales = Eigen::MatrixXd::Zero(s0.rows(), n_dir);
        if (model_.zeta != 1.0) {
            const Eigen::RowVectorXd dots = fg.values[0] * s0.transpose();
            d_scales.noalias() = s0 * fg.gradients[0];  // lambda = 0: rows are the columns
            for (long j = 0; j < dots.size(); ++j)
                d_scales.row(j) *= (model_.zeta - 1.0) * std::pow(dots[j], model_.zeta - 2.0);
        }
        Eigen::MatrixXd g(off[a + 1] - off[a], n_dir);
        std::vector<int> shell_start;  // per shell: first row in g
        int pos = 0;
        for (const auto& sh : sm.shells) shell_start.push_back(pos), pos += 2 * sh.l + 1;
        for (const auto& b : blocks_[s]) {
            if (b.weight_start.empty()) continue;
            const int lam = b.lambda, width = 2 * lam + 1, n_shells = static_cast<int>(b.weight_start.size());
            const long n_cols = b.environment_weights.cols() / n_shells;
            const Eigen::RowVectorXd summed = scales * b.environment_weights;  // A_i flattened, F x n_shells
            const Eigen::Map<const Eigen::MatrixXd> weights(summed.data(), n_cols, n_shells);
            const Eigen::MatrixXd d_summed = b.environment_weights.transpose() * d_scales;  // (F n_shells) x n_dir
            Eigen::MatrixXd dc(width, n_shells);
            for (long d = 0; d < n_dir; ++d) {
                dc.noalias() = Eigen::Map<const Eigen::MatrixXd>(fg.gradients[lam].col(d).data(), width, n_cols) * weights;
                dc.noalias() += fg.values[lam] * Eigen::Map<const Eigen::MatrixXd>(d_summed.col(d).data(), n_cols, n_shells);
                int t = 0;
                for (std::size_t k = 0; k < sm.shells.size(); ++k)
                    if (sm.shells[k].l == lam) g.block(shell_start[k], d, width, 1) = dc.col(t++);
            }
        }
        // The features see positions in Angstrom: d / d R_Bohr = kBohrAngstrom d / d R_Angstrom.
        out.blocks[a] = g * kBohrAngstrom;
        depends[a] = fg.atoms;
    }
    out.first.assign(n_atoms + 1, 0);
    for (long a = 0; a < n_atoms; ++a) {
        out.first[a + 1] = out.first[a] + static_cast<int>(depends[a].size());
        out.atoms.insert(out.atoms.end(), depends[a].begin(), depends[a].end());
    }
    return out;
}

ProjectedKernels DensityPredictor::projected_kernels(const std::vector<int>& numbers,
                                                     const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                                     const Eigen::Matrix3d& cell, const std::array<bool, 3>& pbc) const {
    const std::vector<int> off = offsets(numbers);
    const Neighborhoods env = neighborhoods(numbers, positions, cell, pbc);
    const int n_lambda = model_.descriptor.max_lambda + 1;
    // psi index of (atom, lambda): atom-major, lambdas with shells only.
    std::vector<int> first_psi(numbers.size() + 1, 0);
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        int n = 0;
        for (const auto& b : blocks_[species_index_[numbers[a]]]) n += !b.weight_start.empty();
        first_psi[a + 1] = first_psi[a] + n;
    }
    ProjectedKernels out;
    out.psi.resize(first_psi.back());
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        const auto& blocks = blocks_[species_index_[numbers[a]]];
        std::vector<int> psi_of(n_lambda, -1), seen(n_lambda, 0);
        int k = first_psi[a];
        for (const auto& b : blocks)
            if (!b.weight_start.empty()) psi_of[b.lambda] = k++;
        int pos = off[a];
        for (const auto& sh : species_model(numbers[a]).shells) {
            out.shells.push_back({pos, sh.l, blocks[sh.l].weight_start[seen[sh.l]++], psi_of[sh.l]});
            pos += 2 * sh.l + 1;
        }
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (long a = 0; a < static_cast<long>(numbers.size()); ++a) {
        const SpeciesModel& sm = species_model(numbers[a]);
        const int s = species_index_[numbers[a]];
        const auto feats = soap_.center_features(static_cast<int>(a), numbers, env, &model_.selected, &needed_lambdas_[s]);
        const Eigen::RowVectorXd scales = environment_scales(sm, feats[0]);
        int k = first_psi[a];
        for (const auto& b : blocks_[s])
            if (!b.weight_start.empty()) out.psi[k++] = kernel(sm, feats[b.lambda], scales, b.lambda) * sm.projectors[b.lambda];
    }
    return out;
}

Eigen::VectorXd DensityPredictor::function_integrals(const std::vector<int>& numbers) const {
    const std::vector<int> off = offsets(numbers);
    Eigen::VectorXd q = Eigen::VectorXd::Zero(off.back());
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        int pos = off[a];
        for (const auto& sh : species_model(numbers[a]).shells) {
            if (sh.l == 0)
                for (std::size_t k = 0; k < sh.exponents.size(); ++k)
                    q[pos] += sh.coefficients[k] * std::pow(M_PI / sh.exponents[k], 1.5) / std::sqrt(4.0 * M_PI);
            pos += 2 * sh.l + 1;
        }
    }
    return q;
}

Eigen::VectorXd DensityPredictor::atomic_charges(const std::vector<int>& numbers,
                                                 const Eigen::Ref<const Eigen::VectorXd>& c) const {
    const std::vector<int> off = offsets(numbers);
    if (c.size() != off.back()) throw std::invalid_argument("coefficients do not match the structure");
    const Eigen::VectorXd q = function_integrals(numbers);
    Eigen::VectorXd charges(numbers.size());
    for (std::size_t a = 0; a < numbers.size(); ++a)
        charges[a] = numbers[a] - q.segment(off[a], off[a + 1] - off[a]).dot(c.segment(off[a], off[a + 1] - off[a]));
    return charges;
}

Eigen::MatrixXd DensityPredictor::moment_matrix(const std::vector<int>& numbers,
                                                const Eigen::Ref<const Eigen::MatrixXd>& positions) const {
    const std::vector<int> off = offsets(numbers);
    if (positions.rows() != static_cast<long>(numbers.size()) || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    const Eigen::VectorXd q = function_integrals(numbers);
    Eigen::MatrixXd m(3, off.back());
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        for (int f = off[a]; f < off[a + 1]; ++f) m.col(f) = q[f] * positions.row(a).transpose();
        int pos = off[a];
        for (const auto& sh : species_model(numbers[a]).shells) {
            if (sh.l == 1) {
                // int x phi_{m=+1} = sqrt(3 / 4 pi) sum_k c_k (pi / a_k)^{3/2} / (2 a_k); canonical m = -1, 0, +1 = y, z, x
                double v = 0.0;
                for (std::size_t k = 0; k < sh.exponents.size(); ++k)
                    v += sh.coefficients[k] * std::pow(M_PI / sh.exponents[k], 1.5) / (2.0 * sh.exponents[k]);
                v *= std::sqrt(3.0 / (4.0 * M_PI));
                m(1, pos) += v;
                m(2, pos + 1) += v;
                m(0, pos + 2) += v;
            }
            pos += 2 * sh.l + 1;
        }
    }
    return m;
}

Eigen::Vector3d DensityPredictor::dipole(const std::vector<int>& numbers,
                                         const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                         const Eigen::Ref<const Eigen::VectorXd>& c) const {
    const Eigen::MatrixXd m = moment_matrix(numbers, positions);
    if (c.size() != m.cols()) throw std::invalid_argument("coefficients do not match the structure");
    Eigen::Vector3d mu = -m * c;
    for (std::size_t a = 0; a < numbers.size(); ++a) mu += numbers[a] * positions.row(a).transpose();
    return mu;
}

}  // namespace rhocast
