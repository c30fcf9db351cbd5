// Embedding gather: both backends copy exactly the requested rows, repeated ids included.
#include <gtest/gtest.h>

#include <vector>

#include "lords/ops/embedding.h"

using namespace lords;

namespace {

TEST(Embedding, GathersRowsExactly) {
  const int64_t V = 11, D = 80;
  std::vector<float> table(static_cast<size_t>(V * D));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i) * 0.5f - 3.0f;
  for (const std::vector<int32_t>& tokens :
       {std::vector<int32_t>{4}, std::vector<int32_t>{0, 10, 4},
        std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 1, 1, 7, 7, 10}}) {
    const auto T = static_cast<int64_t>(tokens.size());
    for (auto fn : {&ops::ref::embedding, &ops::cpu::embedding}) {
      std::vector<float> out(static_cast<size_t>(T * D) + 1, -42.0f);  // + 1: nothing past the end
      fn(out.data(), table.data(), tokens.data(), T, V, D);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) ASSERT_EQ(out[t * D + d], table[tokens[t] * D + d]) << t << "," << d;
      EXPECT_EQ(out.back(), -42.0f);
    }
  }
}

}  // namespace
