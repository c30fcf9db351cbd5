// singular_values / delta_spectrum / report formatting of delta_spectrum.h.
#include "lords/engine/delta_spectrum.h"

#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::engine {
namespace {

constexpr double kEpsF32 = 1.1920928955078125e-07;  // 2^-23: fp32 machine epsilon
constexpr int kTop = 10;                            // singular values listed in the report

// Fewest leading σ whose squares reach fraction p of the total energy.
int64_t energy_rank(const std::vector<double>& sigma, double total, double p) {
  double acc = 0;
  for (size_t i = 0; i < sigma.size(); ++i) {
    acc += sigma[i] * sigma[i];
    if (acc >= p * total) return static_cast<int64_t>(i + 1);
  }
  return static_cast<int64_t>(sigma.size());
}

}  // namespace

std::vector<double> singular_values(std::vector<double> A, int64_t N, int64_t K) {
  LORDS_ASSERT(static_cast<int64_t>(A.size()) == N * K && N >= 1 && K >= 1);
  std::vector<double> s(static_cast<size_t>(std::min(N, K)));
  // Row-major A (N, K) is column-major A^T (K, N), which has the same singular values and needs no
  // transposed copy. jobz 'N': values only, U and VT are not referenced.
  const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR,
                                         'N',
                                         static_cast<lapack_int>(K),
                                         static_cast<lapack_int>(N),
                                         A.data(),
                                         static_cast<lapack_int>(K),
                                         s.data(),
                                         nullptr,
                                         1,
                                         nullptr,
                                         1);
  LORDS_CHECK(
      info == 0, ErrorKind::Internal, "[delta] dgesdd failed on ({}, {}): info {}", N, K, info);
  return s;  // dgesdd returns them descending
}

Spectrum delta_spectrum(const Delta& delta, const std::string& label, const std::string& path) {
  Spectrum s;
  s.label = label;
  s.path = path;
  s.kind = delta.kind;
  s.N = delta.N;
  s.K = delta.K;
  s.adapter_rank = delta.adapter_rank;
  s.sigma = singular_values(delta.dW, delta.N, delta.K);
  double energy = 0;
  for (double v : s.sigma) energy += v * v;
  s.fro = std::sqrt(energy);
  if (s.sigma.empty() || s.sigma[0] <= 0) return s;  // ΔW = 0: every rank is 0
  const double tol = static_cast<double>(std::max(delta.N, delta.K)) * kEpsF32 * s.sigma[0];
  s.numerical_rank =
      std::count_if(s.sigma.begin(), s.sigma.end(), [&](double v) { return v > tol; });
  s.rank90 = energy_rank(s.sigma, energy, 0.90);
  s.rank99 = energy_rank(s.sigma, energy, 0.99);
  s.stable_rank = energy / (s.sigma[0] * s.sigma[0]);
  return s;
}

nlohmann::json spectra_json(const std::string& base,
                            const std::string& layer,
                            const std::vector<Spectrum>& spectra) {
  nlohmann::json j;
  j["base"] = base;
  j["layer"] = layer;
  j["shape"] = spectra.empty() ? nlohmann::json::array({0, 0})
                               : nlohmann::json::array({spectra[0].N, spectra[0].K});
  j["tuned"] = nlohmann::json::array();
  for (const Spectrum& s : spectra) {
    const std::vector<double> top(s.sigma.begin(),
                                  s.sigma.begin() + std::min<size_t>(kTop, s.sigma.size()));
    j["tuned"].push_back({{"label", s.label},
                          {"path", s.path},
                          {"kind", delta_kind_name(s.kind)},
                          {"adapter_rank", s.adapter_rank},
                          {"fro_norm", s.fro},
                          {"sigma_max", s.sigma.empty() ? 0.0 : s.sigma[0]},
                          {"top_singular_values", top},
                          {"effective_rank_90", s.rank90},
                          {"effective_rank_99", s.rank99},
                          {"numerical_rank", s.numerical_rank},
                          {"stable_rank", s.stable_rank},
                          {"singular_values", s.sigma}});
  }
  return j;
}

std::string spectra_text(const nlohmann::json& j) {
  std::string out = fmt::format("layer  {}  {}x{}\nbase   {}\n",
                                j["layer"].get<std::string>(),
                                j["shape"][0].get<int64_t>(),
                                j["shape"][1].get<int64_t>(),
                                j["base"].get<std::string>());
  out += fmt::format("{:<24} {:>6} {:>6} {:>11} {:>11} {:>6} {:>6} {:>8} {:>9}\n",
                     "tuned",
                     "kind",
                     "r",
                     "||dW||_F",
                     "sigma_1",
                     "r90",
                     "r99",
                     "num.rank",
                     "stable");
  for (const auto& t : j["tuned"]) {
    out += fmt::format("{:<24} {:>6} {:>6} {:>11.4e} {:>11.4e} {:>6} {:>6} {:>8} {:>9.2f}\n",
                       t["label"].get<std::string>(),
                       t["kind"].get<std::string>(),
                       t["adapter_rank"].get<int64_t>(),
                       t["fro_norm"].get<double>(),
                       t["sigma_max"].get<double>(),
                       t["effective_rank_90"].get<int64_t>(),
                       t["effective_rank_99"].get<int64_t>(),
                       t["numerical_rank"].get<int64_t>(),
                       t["stable_rank"].get<double>());
  }
  out += "top singular values (sigma_i / sigma_1):\n";
  for (const auto& t : j["tuned"]) {
    const double s1 = t["sigma_max"].get<double>();
    std::string row = fmt::format("  {:<22}", t["label"].get<std::string>());
    for (const auto& v : t["top_singular_values"])
      row += fmt::format(" {:.3e}", s1 > 0 ? v.get<double>() / s1 : 0.0);
    out += row + "\n";
  }
  out +=
      "r = adapter rank; r90/r99 = fewest singular values holding 90%/99% of ||dW||_F^2; num.rank "
      "= sigma_i > "
      "max(N,K)*eps_f32*sigma_1; stable = ||dW||_F^2 / sigma_1^2";
  return out;
}

}  // namespace lords::engine
