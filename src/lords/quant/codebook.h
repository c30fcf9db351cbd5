// Codebooks are data: a sorted list of 2^bits levels. Q holds indices into it; W_hat = level[Q] * scale.
//   nf   NormalFloat (bitsandbytes / LoftQ construction): quantiles of N(0,1) with offset 0.9677083,
//        one more positive level than negative, zero included, normalized to max |level| = 1.
//        NF4 equals bitsandbytes' published table.
//   int  symmetric integer grid -2^(b-1) .. 2^(b-1)-1 divided by 2^(b-1)-1, so max positive level = 1
//        (INT4: -8/7 .. 7/7, the paper's QAT grid with scale absmax/7 expressed as scale = absmax).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lords::quant {

enum class CodebookKind { NF, INT };

struct Codebook {
  CodebookKind kind = CodebookKind::NF;
  int bits = 4;
  std::vector<float> levels;     // ascending, 2^bits entries
  std::vector<float> midpoints;  // levels.size() - 1 decision boundaries, midpoints[i] = (l[i]+l[i+1])/2

  std::string name() const;      // "nf4", "int3", ...
  int size() const { return static_cast<int>(levels.size()); }
  // Index of the level nearest to x (ties go to the lower index; NaN maps to the zero level).
  uint8_t nearest(float x) const;
};

// bits in {2, 3, 4}; throws Error{Usage} otherwise.
Codebook make_codebook(CodebookKind kind, int bits);
// Parses "nf" / "int"; throws Error{Usage} on anything else.
CodebookKind codebook_kind_from_name(const std::string& name);
// Builds a codebook from stored levels (a checkpoint); validates count 2^bits and ascending order.
Codebook codebook_from_levels(CodebookKind kind, int bits, const std::vector<float>& levels);

// Inverse of the standard normal CDF, accurate to ~1e-15 (used for the NF construction).
double normal_quantile(double p);

}  // namespace lords::quant
