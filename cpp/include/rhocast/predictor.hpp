// The density predictor (METHOD.md sections 4-5): lambda-SOAP features of the selected columns,
// sparse equivariant kernels against the model's sparse environments, RKHS projection and assembly of
// the coefficients, fused per atom and parallel over atoms (OpenMP). Each atom's output is computed by
// one thread with fixed-size products, so results do not depend on the thread count or on the rest of
// the structure. Positions and cells are in Bohr at this boundary. The descriptor settings stay in
// Angstrom, the unit lambda-SOAP was defined in: its radial basis (Loewdin-orthonormalised r^n Gaussians
// of unnormalised height) is not scale covariant, so the same settings in Bohr would give other
// features; positions are converted to Angstrom (kBohrAngstrom, ASE's value) for the features only.
//
// For atom i of species Z and lambda, with p_i^lambda the (2 lambda + 1) x F features of the selected
// columns and S^lambda_Z the (M (2 lambda + 1)) x F sparse features (row j (2 lambda + 1) + nu):
//   K_i = (p_i^lambda S^T) .* (p_i^0 . s_j^0)^(zeta - 1)      (2 lambda + 1) x M (2 lambda + 1)
//   Psi_i = K_i V_{Z, lambda}                                  (2 lambda + 1) x D   (projected kernel)
//   c_{i, shell (l = lambda, n)} = baseline + Psi_i w_{Z, lambda, n}
// predict() takes the cheaper of two orders per (species, lambda). With k_ij = (p_i^0 . s_j^0)^(zeta - 1)
// and the model-constant T_j = sum_nu s_{j nu}^T [V w]_{j nu} (F x n_shells), c_i^lambda =
// p_i^lambda sum_j k_ij T_j, the sum over j one GEMM (k of a chunk of atoms of one species) x (T_j
// stacked): M F n_shells per atom. When n_shells >= (2 lambda + 1)^2 (lambda = 0 with several shells)
// c_i^lambda = K_i [V w] costs (2 lambda + 1)^2 M (F + n_shells) instead. Chunks are fixed (kChunk atoms
// of a species in atom order), so the arithmetic does not depend on the thread count. Features are
// computed only for the lambdas a species has shells of (and lambda = 0).
// Weight blocks (Z, lambda, n) follow species (ascending), lambda (ascending), n (basis order).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <string>
#include <vector>

#include "rhocast/basis.hpp"
#include "rhocast/lambda_soap.hpp"
#include "rhocast/regression.hpp"

namespace rhocast {

// One Bohr in Angstrom (ase.units.Bohr, CODATA 2014).
constexpr double kBohrAngstrom = 0.5291772105638411;

// What one species contributes to a model.
struct SpeciesModel {
    int atomic_number = 0;
    std::vector<Shell> shells;       // auxiliary basis shells in basis order (Bohr; normalisation included)
    Eigen::VectorXd baseline;        // one atom's coefficients added to every prediction (canonical order)
    // Per lambda = 0..max_lambda: sparse features (M (2 lambda + 1)) x n_selected(lambda), row-major in
    // (environment, mu); every lambda is needed (lambda = 0 enters every kernel).
    std::vector<Eigen::MatrixXd> sparse_features;
    // Per lambda: V (M (2 lambda + 1)) x D, or an empty matrix when the species has no shell of l = lambda.
    std::vector<Eigen::MatrixXd> projectors;
};

// Everything a prediction needs; `weights` may be empty (projected kernels only, as during a fit).
struct ModelData {
    LambdaSoapSettings descriptor;  // lengths in Angstrom (see above); descriptor.species = the model's species
    ColumnSelection selected;       // per lambda; an empty list keeps every column
    double zeta = 2.0;
    std::vector<SpeciesModel> species;  // ascending atomic number, the same set as descriptor.species
    Eigen::VectorXd weights;
};

// The projected kernels of one structure, in the form rhocast::Regression takes them: psi[k] is a
// (2 lambda + 1) x D block, one per (atom, lambda) with a shell; shells maps every shell of every atom
// (canonical order) to its coefficients, its weight block and its psi block.
struct ProjectedKernels {
    std::vector<ShellMap> shells;
    std::vector<Eigen::MatrixXd> psi;
};

// d c / d R of one structure, sparse in neighbours: the coefficients of atom i depend only on the positions
// of i and of the atoms within the cutoff of i, so the memory is sum_i n_coef(i) 3 n_neighbours(i), linear in
// atoms at a given density.
struct CoefficientGradients {
    std::vector<int> first;  // length n_atoms + 1
    std::vector<int> atoms;  // atoms[first[i]..first[i+1]): i, then its other neighbours (images merged), ascending
    // Per atom i: n_coef(i) x 3 n_dep(i), n_dep(i) = first[i+1] - first[i]; column 3 k + x is
    // d c_i / d R_{atoms[first[i] + k], x} (coefficients per Bohr, canonical order within the atom).
    std::vector<Eigen::MatrixXd> blocks;
};

class DensityPredictor {
public:
    explicit DensityPredictor(ModelData model);

    const ModelData& model() const { return model_; }
    double cutoff() const { return model_.descriptor.cutoff / kBohrAngstrom; }  // Bohr
    const std::vector<int>& species() const { return model_.descriptor.species; }
    int n_weights() const { return n_weights_; }
    // Replaces the weights (length n_weights()).
    void set_weights(const Eigen::Ref<const Eigen::VectorXd>& weights);

    // Number of coefficients of a structure (canonical order: atom -> shell -> m).
    int n_coefficients(const std::vector<int>& numbers) const;

    // Coefficients of one structure. positions (n, 3) in Bohr; cell rows = lattice vectors (Bohr), used
    // when pbc is all true; pbc all false is a molecule, mixed pbc is an error.
    Eigen::VectorXd predict(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::MatrixXd>& positions,
                            const Eigen::Matrix3d& cell = Eigen::Matrix3d::Zero(),
                            const std::array<bool, 3>& pbc = {false, false, false}) const;

    // Analytic d c / d R of predict() (same arguments): through the lambda-SOAP features (lambda_soap.hpp,
    // center_feature_gradients), k_ij = (p_i^0 . s_j^0)^(zeta - 1) and p_i^lambda: with
    // A_i = sum_j k_ij T_j, d c_i^lambda = d p_i^lambda A_i + p_i^lambda sum_j d k_ij T_j.
    CoefficientGradients coefficient_gradients(const std::vector<int>& numbers,
                                               const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                               const Eigen::Matrix3d& cell = Eigen::Matrix3d::Zero(),
                                               const std::array<bool, 3>& pbc = {false, false, false}) const;

    // Psi of every (atom, lambda) and the shell map: what the fit needs (same arguments as predict()).
    ProjectedKernels projected_kernels(const std::vector<int>& numbers,
                                       const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                       const Eigen::Matrix3d& cell = Eigen::Matrix3d::Zero(),
                                       const std::array<bool, 3>& pbc = {false, false, false}) const;

    // Integral q (electrons per unit coefficient) of every function of a structure, canonical order.
    Eigen::VectorXd function_integrals(const std::vector<int>& numbers) const;
    // Electrons on each atom, sum over its functions of q c, and the charges Z - electrons (units of e).
    Eigen::VectorXd atomic_charges(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::VectorXd>& c) const;
    // M (3 x n_coef), the electronic dipole per unit coefficient about the origin (e Bohr): column f is
    // q_f R_atom(f) plus, for p functions, the integral of (r - R_atom) phi_f. The dipole is sum_a Z_a R_a - M c.
    Eigen::MatrixXd moment_matrix(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::MatrixXd>& positions) const;
    // Dipole (e Bohr) of nuclei plus electrons about the origin, from the shells' moments. No electron-count
    // correction: with a count off by dN the result moves by dN times the origin shift (the Python
    // properties.dipole_moment(renormalize=True) corrects the count first).
    Eigen::Vector3d dipole(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::MatrixXd>& positions,
                           const Eigen::Ref<const Eigen::VectorXd>& c) const;

private:
    struct Block {  // one (species, lambda) channel
        int lambda = -1;
        std::vector<int> weight_start;  // per shell of this l in basis order
        int size = 0;                   // D
        Eigen::MatrixXd projected_weights;  // V [w_n ...], (M (2 lambda + 1)) x n_shells(lambda)
        bool through_kernel = false;        // predict() forms K_i (n_shells >= (2 lambda + 1)^2)
        // Row j: T_j (F x n_shells, column-major) flattened, M x (F n_shells); see the top of this file
        // (coefficient_gradients uses it for every block).
        Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> environment_weights;
    };
    static constexpr int kChunk = 128;  // atoms of one species per kernel GEMM (amortises packing T)
    const SpeciesModel& species_model(int z) const;
    // Neighbours for the descriptor (positions and cell converted to Angstrom); checks pbc.
    Neighborhoods neighborhoods(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                const Eigen::Matrix3d& cell, const std::array<bool, 3>& pbc) const;
    // K_i of one atom and lambda from its features of that lambda and its k_ij (environment_scales).
    Eigen::MatrixXd kernel(const SpeciesModel& sm, const Eigen::MatrixXd& feats, const Eigen::RowVectorXd& scales,
                           int lambda) const;
    // k_ij = (p_i^0 . s_j^0)^(zeta - 1) of one atom, 1 x M.
    Eigen::RowVectorXd environment_scales(const SpeciesModel& sm, const Eigen::MatrixXd& feats0) const;
    std::vector<int> offsets(const std::vector<int>& numbers) const;
    void update_projected_weights();

    ModelData model_;
    LambdaSoap soap_;
    std::vector<int> species_index_;        // Z -> index into model_.species, -1 when absent
    std::vector<std::vector<Block>> blocks_;  // [species][lambda]
    std::vector<std::vector<bool>> needed_lambdas_;  // [species][lambda]: lambda = 0 or a shell of l = lambda
    int n_weights_ = 0;
};

}  // namespace rhocast
