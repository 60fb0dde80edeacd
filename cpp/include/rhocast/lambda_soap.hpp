// lambda-SOAP equivariant descriptors (METHOD.md section 3).
//
// For a centre i and neighbour species a:  c_i^{a n l m} = sum_j f_c(r_ij) I_nl(r_ij) Y_lm(r_ij / |r_ij|)
// over neighbours j != i within the cutoff, I_nl the radial integral of a Gaussian atomic density
// (width sigma) against an orthonormalised GTO radial basis on [0, r_c], tabulated once and splined.
// The power spectrum of order lambda:
//   p_i^{lambda mu}(q1 l1, q2 l2) = sum_{m1 m2} C^{lambda mu}_{l1 m1, l2 m2} c_i^{q1 l1 m1} c_i^{q2 l2 m2},
// q = (a, n), with l1 + l2 + lambda even (proper tensors). Symmetric pairs are stored once and
// weighted by sqrt(2), so dot products equal those of the full ordered spectrum. Each (atom, lambda)
// block is normalised to unit Frobenius norm over all mu and features.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "rhocast/neighbors.hpp"
#include "rhocast/solid_harmonics.hpp"

namespace rhocast {

struct LambdaSoapSettings {
    double cutoff = 4.0;          // same length unit as the positions
    int max_radial = 8;           // radial functions n = 0..max_radial-1
    int max_angular = 6;          // l = 0..max_angular of the density expansion
    int max_lambda = 5;           // lambda = 0..max_lambda of the output
    double atomic_width = 0.3;    // sigma of the atomic Gaussians
    double cutoff_width = 0.5;    // width of the cosine switching at the cutoff
    std::vector<int> species;     // neighbour species (atomic numbers), fixed at construction
};

// Features of one lambda for a set of centres: data[k] is the (2 lambda + 1) x n_features block of
// centre k.
struct LambdaBlock {
    int lambda = 0;
    std::vector<Eigen::MatrixXd> data;
};

// The neighbours of every atom of one structure within the cutoff: pairs[first[i]..first[i+1]) have
// centre i.
struct Neighborhoods {
    std::vector<NeighborPair> pairs;
    std::vector<int> first;  // length n_atoms + 1
};

// Feature columns kept per lambda (farthest-point selection); an empty list keeps every column.
using ColumnSelection = std::vector<std::vector<int>>;

// The features of one centre and their derivatives with respect to the positions of the atoms they
// depend on: the centre and its neighbours within the cutoff (images of one atom merged).
struct FeatureGradients {
    std::vector<int> atoms;               // the centre first, then its other neighbour atoms, ascending
    std::vector<Eigen::MatrixXd> values;  // per lambda: (2 lambda + 1) x n_columns, as center_features()
    // Per lambda: ((2 lambda + 1) n_columns) x (3 atoms.size()); column 3 k + x is d vec(values[lambda]) /
    // d R_{atoms[k], x} (vec column-major), per unit length of the positions.
    std::vector<Eigen::MatrixXd> gradients;
};

class LambdaSoap {
public:
    explicit LambdaSoap(LambdaSoapSettings settings);

    const LambdaSoapSettings& settings() const { return settings_; }
    int n_features(int lambda) const { return static_cast<int>(pairs_[lambda].size()); }

    // Features of `centers` (all atoms when empty) of one structure. positions (n, 3); cell rows are
    // lattice vectors, nullptr for a molecule. Returns one block per lambda = 0..max_lambda.
    std::vector<LambdaBlock> compute(const std::vector<int>& numbers,
                                     const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                     const Eigen::Matrix3d* cell,
                                     const std::vector<int>& centers = {}) const;

    // The pieces of compute() for callers that fuse features with later work per atom (the predictor).
    // neighborhoods() checks `numbers` against the species and lists the neighbours of every atom.
    Neighborhoods neighborhoods(const std::vector<int>& numbers, const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                const Eigen::Matrix3d* cell) const;
    // Features of centre i, one (2 lambda + 1) x n_columns block per lambda: the columns `selected[lambda]`
    // (all when `selected` is null or the list is empty), normalised over *all* columns. With `lambdas`,
    // only the lambdas it flags are computed, the others are left (2 lambda + 1) x 0 (a species without
    // shells of some l needs no features of lambda = l). Thread-safe.
    std::vector<Eigen::MatrixXd> center_features(int i, const std::vector<int>& numbers, const Neighborhoods& env,
                                                 const ColumnSelection* selected = nullptr,
                                                 const std::vector<bool>* lambdas = nullptr) const;

    // center_features() with the analytic derivatives: density coefficients through the splined radial
    // integrals, the solid harmonics and the cutoff function, then the CG products and the norm (over all
    // columns, from the Gram matrices). Thread-safe.
    FeatureGradients center_feature_gradients(int i, const std::vector<int>& numbers, const Neighborhoods& env,
                                              const ColumnSelection* selected = nullptr) const;

    // Real-basis Clebsch-Gordan coefficients C^{lambda mu}_{l1 m1, l2 m2}: cg[mu](m1, m2).
    static std::vector<Eigen::MatrixXd> real_clebsch_gordan(int l1, int l2, int lambda);

    // Radial integrals I_nl(r) (orthonormalised, splined) at distance r, shape (max_radial).
    Eigen::VectorXd radial_integrals(int l, double r) const;

private:
    struct Pair {
        int l1, l2, q1, q2;
        double weight;
        int coupling;  // index into couplings_[lambda]
    };
    struct CgTerm {
        int m1, m2;
        double value;
    };
    struct Coupling {
        int l1, l2;
        std::vector<std::vector<CgTerm>> cg;  // per mu: the nonzero C^{lambda mu}_{l1 m1, l2 m2}
        std::vector<int> feature_index;       // for every (q1, q2) in row-major order; -1 when not kept
    };
    void tabulate_radial();
    double cutoff_function(double r) const;
    double cutoff_derivative(double r) const;
    // radial_integrals() of every l = 0..max_angular into out[l * max_radial + n], without allocating;
    // with `derivative`, d/dr of the spline into derivative[l * max_radial + n].
    void radial_integrals_all(double r, double* out, double* derivative = nullptr) const;
    // Density coefficients of centre i, coef[l] Q x (2 l + 1) (rows species-major, then n). With `atoms`
    // and `gradient`: the atoms they depend on (as FeatureGradients::atoms) and gradient[3 k + x][l] =
    // d coef[l] / d R_{atoms[k], x}.
    std::vector<Eigen::MatrixXd> expansion(int i, const std::vector<int>& numbers, const Neighborhoods& env,
                                           std::vector<int>* atoms = nullptr,
                                           std::vector<std::vector<Eigen::MatrixXd>>* gradient = nullptr) const;
    // sum over all columns of lambda of the squared unnormalised features, from G_l = coef_l^T coef_l; with
    // `d_gram`, d norm^2 / d G_l into d_gram[l].
    double squared_norm(int lambda, const std::vector<Eigen::MatrixXd>& gram,
                        std::vector<Eigen::MatrixXd>* d_gram = nullptr) const;

    LambdaSoapSettings settings_;
    std::vector<int> species_index_;      // atomic number -> channel (or -1), up to Z = 118
    std::vector<std::vector<Pair>> pairs_;          // per lambda: feature columns
    std::vector<std::vector<Coupling>> couplings_;  // per lambda
    std::vector<std::vector<CartesianTerm>> harmonics_;  // real solid harmonics, (l, m) row-major
    // Radial spline: values and second derivatives on a uniform grid, per (l, n).
    double grid_step_ = 0.0;
    int grid_size_ = 0;
    std::vector<Eigen::MatrixXd> spline_y_, spline_d2_;  // per l: grid_size x max_radial
};

}  // namespace rhocast
