#include "rhocast/rhocast.h"

#include <stdexcept>
#include <string>

#include "rhocast/model_file.hpp"
#include "rhocast/properties.hpp"

struct rhocast_model {
    rhocast::DensityPredictor predictor;
};

namespace {

thread_local std::string last_error;

rhocast_status fail(rhocast_status status, const std::string& message) {
    last_error = message;
    return status;
}

// Runs f, turning exceptions into status codes and the last-error message.
template <class F>
rhocast_status guarded(F&& f) {
    try {
        last_error.clear();
        f();
        return RHOCAST_OK;
    } catch (const std::invalid_argument& e) {
        return fail(RHOCAST_ERROR_INPUT, e.what());
    } catch (const std::exception& e) {
        return fail(RHOCAST_ERROR_INTERNAL, e.what());
    }
}

std::vector<int> atomic_numbers(const rhocast_model* model, int n_atoms, const int* numbers) {
    if (!model) throw std::invalid_argument("model is NULL");
    if (n_atoms < 1 || !numbers) throw std::invalid_argument("need n_atoms >= 1 and atomic numbers");
    std::vector<int> out(numbers, numbers + n_atoms);
    const auto& species = model->predictor.species();
    for (int z : out) {
        bool known = false;
        for (int s : species) known = known || s == z;
        if (!known) throw std::invalid_argument("atomic number " + std::to_string(z) + " is not a species of the model");
    }
    return out;
}

Eigen::MatrixXd positions_of(int n_atoms, const double* positions) {
    if (!positions) throw std::invalid_argument("positions is NULL");
    return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 3, Eigen::RowMajor>>(positions, n_atoms, 3);
}

}  // namespace

extern "C" {

const char* rhocast_last_error(void) { return last_error.c_str(); }

rhocast_status rhocast_model_load(const char* path, rhocast_model** model) {
    if (!path || !model) return fail(RHOCAST_ERROR_INPUT, "path and model must not be NULL");
    *model = nullptr;
    try {
        rhocast::ModelData data = rhocast::load_model(path);
        *model = new rhocast_model{rhocast::DensityPredictor(std::move(data))};
        last_error.clear();
        return RHOCAST_OK;
    } catch (const std::exception& e) {
        return fail(RHOCAST_ERROR_FILE, e.what());
    }
}

void rhocast_model_free(rhocast_model* model) { delete model; }

rhocast_status rhocast_model_n_coefficients(const rhocast_model* model, int n_atoms, const int* numbers,
                                            long* n_coefficients) {
    return guarded([&] {
        const auto z = atomic_numbers(model, n_atoms, numbers);
        if (!n_coefficients) throw std::invalid_argument("n_coefficients is NULL");
        *n_coefficients = model->predictor.n_coefficients(z);
    });
}

rhocast_status rhocast_predict(const rhocast_model* model, int n_atoms, const int* numbers, const double* positions,
                               double* coefficients, long capacity) {
    return guarded([&] {
        const auto z = atomic_numbers(model, n_atoms, numbers);
        const long n = model->predictor.n_coefficients(z);
        if (!coefficients || capacity < n)
            throw std::invalid_argument("the coefficient buffer holds " + std::to_string(capacity) + " doubles; " +
                                        std::to_string(n) + " are needed");
        const Eigen::VectorXd c = model->predictor.predict(z, positions_of(n_atoms, positions));
        Eigen::Map<Eigen::VectorXd>(coefficients, n) = c;
    });
}

rhocast_status rhocast_dipole(const rhocast_model* model, int n_atoms, const int* numbers, const double* positions,
                              double dipole[3]) {
    return guarded([&] {
        const auto z = atomic_numbers(model, n_atoms, numbers);
        if (!dipole) throw std::invalid_argument("dipole is NULL");
        const Eigen::MatrixXd r = positions_of(n_atoms, positions);
        const Eigen::Vector3d mu =
            rhocast::corrected_dipole(model->predictor, z, r, model->predictor.predict(z, r));
        for (int k = 0; k < 3; ++k) dipole[k] = mu[k];
    });
}

rhocast_status rhocast_dipole_derivatives(const rhocast_model* model, int n_atoms, const int* numbers,
                                          const double* positions, const double* cell, const int* pbc,
                                          double* out) {
    return guarded([&] {
        const auto z = atomic_numbers(model, n_atoms, numbers);
        if (!out) throw std::invalid_argument("out is NULL");
        if (pbc && (pbc[0] || pbc[1] || pbc[2]))
            throw std::invalid_argument(
                "dipole derivatives are defined for molecules (pbc NULL or {0, 0, 0}); the dipole of a periodic "
                "cell is not defined by its density alone");
        (void)cell;  // a molecule has no cell
        const Eigen::MatrixXd r = positions_of(n_atoms, positions);
        const auto& predictor = model->predictor;
        double n_electrons = 0.0;
        for (int number : z) n_electrons += number;
        const Eigen::MatrixXd apt = rhocast::corrected_dipole_derivatives(
            predictor, z, r, predictor.predict(z, r), predictor.coefficient_gradients(z, r), n_electrons);
        for (int b = 0; b < n_atoms; ++b)
            for (int x = 0; x < 3; ++x)
                for (int y = 0; y < 3; ++y) out[9 * b + 3 * x + y] = apt(x, 3 * b + y);
    });
}

}  // extern "C"
