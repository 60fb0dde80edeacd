// Predictions, dipole and atomic polar tensors of an exported model, through the C++ and the C API, against
// the values Python wrote (tests/data/make_exported_model.py): `test_model_file MODEL.rcm REFERENCE.txt`, exit status 0 when
// every number agrees to 1e-12.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "rhocast/model_file.hpp"
#include "rhocast/predictor.hpp"
#include "rhocast/properties.hpp"
#include "rhocast/rhocast.h"

namespace {

int failures = 0;

void check_close(const char* what, const double* got, const std::vector<double>& want, double tol = 1e-12) {
    double worst = 0.0;
    for (std::size_t k = 0; k < want.size(); ++k) worst = std::fmax(worst, std::fabs(got[k] - want[k]));
    const bool ok = worst <= tol;
    std::printf("%s %s: max |difference| %.3e over %zu values\n", ok ? "ok  " : "FAIL", what, worst, want.size());
    failures += !ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL.rcm REFERENCE.txt\n", argv[0]);
        return 2;
    }
    // Reference: n_atoms, then Z x y z (Bohr) per atom, n_coefficients, coefficients, dipole (e Bohr), and
    // the polar tensors (e), 9 per atom: d mu_x / d R_{b, y} at 9 b + 3 x + y.
    std::ifstream ref(argv[2]);
    int n = 0;
    ref >> n;
    std::vector<int> numbers(n);
    Eigen::Matrix<double, Eigen::Dynamic, 3, Eigen::RowMajor> positions(n, 3);
    for (int i = 0; i < n; ++i) ref >> numbers[i] >> positions(i, 0) >> positions(i, 1) >> positions(i, 2);
    long n_coefficients = 0;
    ref >> n_coefficients;
    std::vector<double> coefficients(n_coefficients), dipole(3), polar_tensors(9 * n);
    for (auto& c : coefficients) ref >> c;
    for (auto& d : dipole) ref >> d;
    for (auto& p : polar_tensors) ref >> p;
    if (!ref) {
        std::fprintf(stderr, "%s: cannot read the reference\n", argv[2]);
        return 2;
    }

    const rhocast::DensityPredictor predictor(rhocast::load_model(argv[1]));
    const Eigen::VectorXd c = predictor.predict(numbers, positions);
    if (c.size() != n_coefficients) {
        std::printf("FAIL C++ API: %ld coefficients, expected %ld\n", static_cast<long>(c.size()), n_coefficients);
        return 1;
    }
    check_close("C++ API coefficients", c.data(), coefficients);
    const Eigen::Vector3d mu = rhocast::corrected_dipole(predictor, numbers, positions, c);
    check_close("C++ API dipole", mu.data(), dipole);
    double n_electrons = 0.0;
    for (int z : numbers) n_electrons += z;
    const Eigen::MatrixXd apt = rhocast::corrected_dipole_derivatives(
        predictor, numbers, positions, c, predictor.coefficient_gradients(numbers, positions), n_electrons);
    std::vector<double> apt_flat(9 * n);  // apt(x, 3 b + y) -> 9 b + 3 x + y
    for (int b = 0; b < n; ++b)
        for (int x = 0; x < 3; ++x)
            for (int y = 0; y < 3; ++y) apt_flat[9 * b + 3 * x + y] = apt(x, 3 * b + y);
    check_close("C++ API dipole derivatives", apt_flat.data(), polar_tensors);

    rhocast_model* model = nullptr;
    long size = 0;
    std::vector<double> buffer(n_coefficients);
    double mu_c[3];
    std::vector<double> apt_c(9 * n);
    const int molecule[3] = {0, 0, 0};
    if (rhocast_model_load(argv[1], &model) != RHOCAST_OK ||
        rhocast_model_n_coefficients(model, n, numbers.data(), &size) != RHOCAST_OK || size != n_coefficients ||
        rhocast_predict(model, n, numbers.data(), positions.data(), buffer.data(), size) != RHOCAST_OK ||
        rhocast_dipole(model, n, numbers.data(), positions.data(), mu_c) != RHOCAST_OK ||
        rhocast_dipole_derivatives(model, n, numbers.data(), positions.data(), nullptr, molecule, apt_c.data()) !=
            RHOCAST_OK) {
        std::printf("FAIL C API: %s\n", rhocast_last_error());
        rhocast_model_free(model);
        return 1;
    }
    check_close("C API coefficients", buffer.data(), coefficients);
    check_close("C API dipole", mu_c, dipole);
    check_close("C API dipole derivatives", apt_c.data(), polar_tensors);
    // Errors are status codes with a message, not crashes.
    const int bad_numbers[1] = {92};
    const bool refused = rhocast_predict(model, 1, bad_numbers, positions.data(), buffer.data(), size) ==
                             RHOCAST_ERROR_INPUT &&
                         std::string(rhocast_last_error()).find("92") != std::string::npos;
    const bool small = rhocast_predict(model, n, numbers.data(), positions.data(), buffer.data(), size - 1) ==
                       RHOCAST_ERROR_INPUT;
    rhocast_model* none = nullptr;
    const bool missing = rhocast_model_load("/nonexistent/model.rcm", &none) == RHOCAST_ERROR_FILE && none == nullptr;
    const double cell[9] = {20, 0, 0, 0, 20, 0, 0, 0, 20};
    const int periodic[3] = {1, 1, 1};
    const bool no_cells =
        rhocast_dipole_derivatives(model, n, numbers.data(), positions.data(), cell, periodic, apt_c.data()) ==
            RHOCAST_ERROR_INPUT &&
        std::string(rhocast_last_error()).find("periodic") != std::string::npos;
    const bool no_buffer = rhocast_dipole_derivatives(model, n, numbers.data(), positions.data(), nullptr, nullptr,
                                                      nullptr) == RHOCAST_ERROR_INPUT;
    const bool ok = refused && small && missing && no_cells && no_buffer;
    std::printf("%s C API errors (unknown element, small buffer, missing file, periodic cell, no buffer)\n",
                ok ? "ok  " : "FAIL");
    failures += !ok;
    rhocast_model_free(model);
    return failures == 0 ? 0 : 1;
}
