#include "rhocast/model_file.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace rhocast {

namespace {

class Reader {
public:
    explicit Reader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
        if (!in_) fail("cannot open the file");
        const std::uint16_t probe = 1;
        unsigned char first;
        std::memcpy(&first, &probe, 1);
        if (first != 1) fail("this host is big-endian; the model file is little-endian");
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("model file " + path_ + ": " + what);
    }
    void bytes(void* out, std::size_t n, const char* what) {
        in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
        if (!in_) fail(std::string("truncated while reading ") + what);
    }
    long integer(const char* what) {
        std::int64_t v;
        bytes(&v, sizeof v, what);
        return static_cast<long>(v);
    }
    long count(const char* what, long max = 1L << 40) {
        const long n = integer(what);
        if (n < 0 || n > max) fail(std::string("invalid size ") + std::to_string(n) + " for " + what);
        return n;
    }
    double real(const char* what) {
        double v;
        bytes(&v, sizeof v, what);
        return v;
    }
    std::vector<double> reals(const char* what) {
        std::vector<double> v(count(what));
        bytes(v.data(), v.size() * sizeof(double), what);
        return v;
    }
    Eigen::MatrixXd matrix(const char* what) {
        const long rows = count(what), cols = count(what);
        Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(rows, cols);
        bytes(m.data(), static_cast<std::size_t>(rows * cols) * sizeof(double), what);
        return m;
    }
    void expect_end() {
        char tail[4];
        bytes(tail, 4, "the end marker");
        if (std::memcmp(tail, "END\0", 4) != 0) fail("no end marker: the file is corrupt");
        if (in_.peek() != std::char_traits<char>::eof()) fail("data after the end marker");
    }

private:
    std::string path_;
    std::ifstream in_;
};

}  // namespace

ModelData load_model(const std::string& path) {
    Reader r(path);
    char magic[8];
    r.bytes(magic, 8, "the magic");
    if (std::memcmp(magic, "RHOCASTM", 8) != 0)
        r.fail("not an exported rhocast model (write one with `rhocast export model.h5 model.rcm`)");
    const long version = r.integer("the version");
    if (version != kModelFileVersion)
        r.fail("format version " + std::to_string(version) + "; this rhocast reads version " +
               std::to_string(kModelFileVersion));
    ModelData m;
    m.descriptor.cutoff = r.real("cutoff");
    m.descriptor.atomic_width = r.real("atomic_width");
    m.descriptor.cutoff_width = r.real("cutoff_width");
    m.descriptor.max_radial = static_cast<int>(r.count("max_radial", 1000));
    m.descriptor.max_angular = static_cast<int>(r.count("max_angular", 100));
    m.descriptor.max_lambda = static_cast<int>(r.count("max_lambda", 100));
    m.zeta = r.real("zeta");
    m.descriptor.species.resize(r.count("n_species", 118));
    for (auto& z : m.descriptor.species) z = static_cast<int>(r.count("species", 118));
    m.selected.resize(m.descriptor.max_lambda + 1);
    for (auto& cols : m.selected) {
        cols.resize(r.count("selected columns"));
        for (auto& c : cols) c = static_cast<int>(r.count("selected column"));
    }
    for (std::size_t s = 0; s < m.descriptor.species.size(); ++s) {
        SpeciesModel sm;
        sm.atomic_number = static_cast<int>(r.count("atomic number", 118));
        sm.shells.resize(r.count("n_shells"));
        for (auto& sh : sm.shells) {
            sh.l = static_cast<int>(r.count("shell l", 100));
            const long n = r.count("n_primitives");
            sh.exponents.resize(n);
            sh.coefficients.resize(n);
            r.bytes(sh.exponents.data(), n * sizeof(double), "exponents");
            r.bytes(sh.coefficients.data(), n * sizeof(double), "coefficients");
        }
        const auto baseline = r.reals("baseline");
        sm.baseline = Eigen::Map<const Eigen::VectorXd>(baseline.data(), baseline.size());
        for (int lam = 0; lam <= m.descriptor.max_lambda; ++lam) sm.sparse_features.push_back(r.matrix("sparse features"));
        for (int lam = 0; lam <= m.descriptor.max_lambda; ++lam) sm.projectors.push_back(r.matrix("projector"));
        m.species.push_back(std::move(sm));
    }
    const auto w = r.reals("weights");
    m.weights = Eigen::Map<const Eigen::VectorXd>(w.data(), w.size());
    r.expect_end();
    return m;
}

}  // namespace rhocast
