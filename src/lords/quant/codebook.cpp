// Codebooks: NormalFloat (LoftQ / bitsandbytes `create_normal_map`, asymmetric, offset 0.9677083) and the
// symmetric integer grid. Levels are computed the way the reference does it: torch.linspace in float32,
// scipy.stats.norm.ppf in double, cast to float32, sorted, divided by the max in float32. That makes NF4
// reproduce bitsandbytes' published table.
#include "lords/quant/codebook.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::quant {
namespace {

constexpr double kNfOffset = 0.9677083;

// torch.linspace(start, end, steps) for float32 on CPU: the first half counts up from start, the second
// half counts down from end, in float32 arithmetic. volatile keeps the product from being contracted
// into an FMA (torch's scalar path rounds the product first).
std::vector<float> linspace_f32(float start, float end, int steps) {
  std::vector<float> out(static_cast<size_t>(steps));
  if (steps == 1) {
    out[0] = start;
    return out;
  }
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i) {
    volatile float prod = step * static_cast<float>(i < halfway ? i : steps - i - 1);
    out[static_cast<size_t>(i)] = i < halfway ? start + prod : end - prod;
  }
  return out;
}

std::vector<float> nf_levels(int bits) {
  const int half = (1 << bits) / 2;
  std::vector<float> v;
  const std::vector<float> pos = linspace_f32(static_cast<float>(kNfOffset), 0.5f, half + 1);
  for (int i = 0; i < half; ++i) v.push_back(static_cast<float>(normal_quantile(pos[static_cast<size_t>(i)])));
  v.push_back(0.0f);
  const std::vector<float> neg = linspace_f32(static_cast<float>(kNfOffset), 0.5f, half);
  for (int i = 0; i + 1 < half; ++i) v.push_back(static_cast<float>(-normal_quantile(neg[static_cast<size_t>(i)])));
  std::sort(v.begin(), v.end());
  const float mx = v.back();
  for (float& x : v) x /= mx;
  return v;
}

std::vector<float> int_levels(int bits) {
  const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  std::vector<float> v;
  for (int i = lo; i <= hi; ++i) v.push_back(static_cast<float>(i) / static_cast<float>(hi));
  return v;
}

void fill_midpoints(Codebook* cb) {
  cb->midpoints.resize(cb->levels.size() - 1);
  for (size_t i = 0; i + 1 < cb->levels.size(); ++i) cb->midpoints[i] = 0.5f * (cb->levels[i] + cb->levels[i + 1]);
}

}  // namespace

std::string Codebook::name() const {
  return fmt::format("{}{}", kind == CodebookKind::NF ? "nf" : "int", bits);
}

uint8_t Codebook::nearest(float x) const {
  if (std::isnan(x)) x = 0.0f;
  // Number of decision boundaries strictly below x: x exactly on a boundary goes to the lower level.
  return static_cast<uint8_t>(std::lower_bound(midpoints.begin(), midpoints.end(), x) - midpoints.begin());
}

Codebook make_codebook(CodebookKind kind, int bits) {
  LORDS_CHECK(bits >= 2 && bits <= 4, ErrorKind::Usage, "[codebook] bits must be 2, 3 or 4, got {}", bits);
  Codebook cb;
  cb.kind = kind;
  cb.bits = bits;
  cb.levels = kind == CodebookKind::NF ? nf_levels(bits) : int_levels(bits);
  fill_midpoints(&cb);
  return cb;
}

CodebookKind codebook_kind_from_name(const std::string& name) {
  if (name == "nf") return CodebookKind::NF;
  if (name == "int") return CodebookKind::INT;
  LORDS_FAIL(ErrorKind::Usage, "[codebook] unknown codebook '{}', expected 'nf' or 'int'", name);
}

Codebook codebook_from_levels(CodebookKind kind, int bits, const std::vector<float>& levels) {
  LORDS_CHECK(bits >= 2 && bits <= 4, ErrorKind::Format, "[codebook] bits must be 2, 3 or 4, got {}", bits);
  LORDS_CHECK(levels.size() == (size_t{1} << bits), ErrorKind::Format,
              "[codebook] {} levels for {} bits, expected {}", levels.size(), bits, 1 << bits);
  for (size_t i = 0; i < levels.size(); ++i) {
    LORDS_CHECK(std::isfinite(levels[i]), ErrorKind::Format, "[codebook] level {} is not finite", i);
    LORDS_CHECK(i == 0 || levels[i - 1] < levels[i], ErrorKind::Format,
                "[codebook] levels must be strictly ascending: level {} = {} after {}", i, levels[i],
                levels[i - 1]);
  }
  Codebook cb;
  cb.kind = kind;
  cb.bits = bits;
  cb.levels = levels;
  fill_midpoints(&cb);
  return cb;
}

// Acklam's rational approximation (relative error < 1.2e-9) refined by one Halley step on
// Phi(x) - p computed with erfc, which brings it to double precision.
double normal_quantile(double p) {
  if (std::isnan(p) || p < 0.0 || p > 1.0) return std::nan("");
  if (p == 0.0) return -HUGE_VAL;
  if (p == 1.0) return HUGE_VAL;
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  double x;
  if (p < kLow || p > 1.0 - kLow) {
    const double q = std::sqrt(-2.0 * std::log(p < kLow ? p : 1.0 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    if (p > 1.0 - kLow) x = -x;
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  // Halley step. For p > 1/2 work with the upper tail so the residual keeps its relative precision.
  const double kSqrt2Pi = 2.50662827463100050242;
  const double e = p > 0.5 ? (1.0 - p) - 0.5 * std::erfc(x / std::sqrt(2.0))
                           : 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * kSqrt2Pi * std::exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

}  // namespace lords::quant
