// Dipole of the first structure of an xyz file (element symbols, Angstrom) from an exported rhocast model,
// through the C++ API: `dipole_cpp model.rcm molecule.xyz` prints the dipole in e Angstrom and its norm in Debye.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "rhocast/model_file.hpp"
#include "rhocast/predictor.hpp"
#include "rhocast/properties.hpp"

namespace {

constexpr double kDebyePerEAngstrom = 4.803204672997659;  // 1 / ase.units.Debye

int atomic_number(const std::string& symbol) {
    static const std::vector<std::string> symbols = {"H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",
                                                     "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar"};
    for (std::size_t z = 0; z < symbols.size(); ++z)
        if (symbols[z] == symbol) return static_cast<int>(z) + 1;
    throw std::invalid_argument("unknown element symbol '" + symbol + "' (H-Ar)");
}

// The first structure of an xyz file: atomic numbers and positions in Bohr.
void read_xyz(const std::string& path, std::vector<int>& numbers, Eigen::MatrixXd& positions) {
    std::ifstream in(path);
    std::string line;
    int n = 0;
    if (!in || !std::getline(in, line) || !(std::istringstream(line) >> n) || n < 1 || !std::getline(in, line))
        throw std::runtime_error(path + ": not an xyz file (atom count, comment, then 'symbol x y z' lines)");
    numbers.resize(n);
    positions.resize(n, 3);
    for (int i = 0; i < n; ++i) {
        std::string symbol;
        double x, y, z;
        if (!std::getline(in, line) || !(std::istringstream(line) >> symbol >> x >> y >> z))
            throw std::runtime_error(path + ": atom line " + std::to_string(i + 1) + " is not 'symbol x y z'");
        numbers[i] = atomic_number(symbol);
        positions.row(i) = Eigen::RowVector3d(x, y, z) / rhocast::kBohrAngstrom;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.rcm STRUCTURE.xyz\n";
        return 2;
    }
    try {
        const rhocast::DensityPredictor predictor(rhocast::load_model(argv[1]));
        std::vector<int> numbers;
        Eigen::MatrixXd positions;
        read_xyz(argv[2], numbers, positions);
        const Eigen::VectorXd c = predictor.predict(numbers, positions);
        const Eigen::Vector3d mu = rhocast::corrected_dipole(predictor, numbers, positions, c) * rhocast::kBohrAngstrom;
        std::printf("dipole (e Angstrom): %.15e %.15e %.15e\n", mu[0], mu[1], mu[2]);
        std::printf("|dipole| (Debye): %.6f\n", kDebyePerEAngstrom * mu.norm());
    } catch (const std::exception& e) {
        std::cerr << "rhocast: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
