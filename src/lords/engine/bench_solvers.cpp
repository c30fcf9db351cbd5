#include "lords/engine/bench_solvers.h"

#include <chrono>
#include <cmath>
#include <random>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/engine/linear_quant.h"
#include "lords/io/model_source.h"

namespace lords::engine {
namespace {

std::vector<double> row_rms(const std::vector<float>& w, int64_t rows, int64_t cols, bool by_row) {
  std::vector<double> acc(static_cast<size_t>(by_row ? rows : cols), 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double v = w[static_cast<size_t>(i * cols + j)];
      acc[static_cast<size_t>(by_row ? i : j)] += v * v;
    }
  for (double& a : acc) a = std::sqrt(a / static_cast<double>(by_row ? cols : rows)) + 1e-12;
  return acc;
}

}  // namespace

std::vector<float> synthesize_matrix(int64_t N, int64_t K, const std::vector<float>* like, int64_t like_rows,
                                     int64_t like_cols, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> W(static_cast<size_t>(N * K));
  std::vector<double> r(static_cast<size_t>(N)), c(static_cast<size_t>(K));
  if (like != nullptr) {
    const std::vector<double> rr = row_rms(*like, like_rows, like_cols, true);
    const std::vector<double> cc = row_rms(*like, like_rows, like_cols, false);
    // Standardized entries z = w / (r_i c_j / mean(r)) keep the layer's tails without its scales.
    double mean_r = 0;
    for (double v : rr) mean_r += v;
    mean_r /= static_cast<double>(rr.size());
    std::vector<float> z(like->size());
    for (int64_t i = 0; i < like_rows; ++i)
      for (int64_t j = 0; j < like_cols; ++j) {
        const size_t idx = static_cast<size_t>(i * like_cols + j);
        z[idx] = static_cast<float>((*like)[idx] / (rr[static_cast<size_t>(i)] * cc[static_cast<size_t>(j)] / mean_r));
      }
    std::uniform_int_distribution<size_t> pick_r(0, rr.size() - 1), pick_c(0, cc.size() - 1), pick_z(0, z.size() - 1);
    for (double& v : r) v = rr[pick_r(rng)] / mean_r;
    for (double& v : c) v = cc[pick_c(rng)];
    for (float& w : W) w = z[pick_z(rng)];
  } else {
    std::normal_distribution<double> normal(0.0, 1.0);
    std::chi_squared_distribution<double> chi2(4.0);
    for (double& v : r) v = std::exp(0.3 * normal(rng));
    for (double& v : c) v = std::exp(0.3 * normal(rng)) / std::sqrt(static_cast<double>(K));
    for (float& w : W) w = static_cast<float>(normal(rng) / std::sqrt(chi2(rng) / 4.0));
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) W[static_cast<size_t>(n * K + k)] *= static_cast<float>(r[static_cast<size_t>(n)] * c[static_cast<size_t>(k)]);
  return W;
}

std::vector<BenchSolversRow> bench_solvers(const BenchSolversRequest& req) {
  std::vector<float> like;
  int64_t like_rows = 0, like_cols = 0;
  if (req.like_model) {
    const io::ModelSource src = io::open_model(*req.like_model);
    const HostTensor t = src.index.load_f32(req.like_layer);
    LORDS_CHECK(t.shape.size() == 2, ErrorKind::Usage, "{}: '{}' is not a matrix", *req.like_model, req.like_layer);
    like = t.data;
    like_rows = t.shape[0];
    like_cols = t.shape[1];
  }
  const int threads = req.threads > 0 ? req.threads : default_threads();
  set_inner_threads(threads);
  std::vector<BenchSolversRow> rows;
  for (const auto& [N, K] : req.shapes) {
    const std::vector<float> W = synthesize_matrix(N, K, req.like_model ? &like : nullptr, like_rows, like_cols,
                                                   req.seed);
    for (int bits : req.bits) {
      const quant::Codebook cb = quant::make_codebook(req.codebook, bits);
      struct Variant {
        std::string name;
        Method method;
        quant::SolverKind solver;
        int steps;
      };
      const std::vector<Variant> variants = {
          {"rtn", Method::Rtn, quant::SolverKind::None, 0},
          {"svd-init", Method::Lords, quant::SolverKind::None, 0},
          {fmt::format("adam-{}", req.adam_steps), Method::Lords, quant::SolverKind::Adam, req.adam_steps},
          {fmt::format("als-{}", req.als_steps), Method::Lords, quant::SolverKind::Als, req.als_steps}};
      for (const Variant& v : variants) {
        QuantConfig c;
        c.method = v.method;
        c.bits = bits;
        c.codebook = req.codebook;
        c.block = req.block;
        c.solver = v.solver;
        c.steps = v.steps;
        c.lr = req.adam_lr;
        c.scale_dtype = DType::F32;  // solver quality, not storage rounding
        LinearStats st;
        const auto start = std::chrono::steady_clock::now();
        quantize_linear(W.data(), N, K, c, cb, &st);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rows.push_back({N, K, st.rank, bits, v.name, std::sqrt(st.err_sq / st.w_sq), secs});
      }
    }
  }
  return rows;
}

std::string bench_solvers_table(const std::vector<BenchSolversRow>& rows) {
  std::string s = fmt::format("| shape | bits | rank | method | rel_err | err / rtn | time_s | time / adam |\n"
                              "|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : rows) {
    double rtn = 0, adam = 0;
    for (const auto& o : rows) {
      if (o.N != row.N || o.K != row.K || o.bits != row.bits) continue;
      if (o.method == "rtn") rtn = o.rel_err;
      if (o.method.rfind("adam", 0) == 0) adam = o.seconds;
    }
    s += fmt::format("| {}x{} | {} | {} | {} | {:.5f} | {:.3f} | {:.2f} | {} |\n", row.N, row.K, row.bits,
                     row.method == "rtn" ? std::string("-") : std::to_string(row.rank), row.method, row.rel_err,
                     rtn > 0 ? row.rel_err / rtn : 0.0, row.seconds,
                     row.method == "rtn" || adam <= 0 ? std::string("-") : fmt::format("{:.3f}", row.seconds / adam));
  }
  return s;
}

nlohmann::json bench_solvers_json(const std::vector<BenchSolversRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows)
    j.push_back({{"N", r.N}, {"K", r.K}, {"rank", r.rank}, {"bits", r.bits}, {"method", r.method},
                 {"rel_err", r.rel_err}, {"seconds", r.seconds}});
  return j;
}

}  // namespace lords::engine
