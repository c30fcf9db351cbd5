// fp16/bf16 conversions (checkpoint scales go through them) against the hardware F16C instructions and
// exact arithmetic, and atomic outputs.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/temp_dir.h"
#include "lords/core/atomic_output.h"
#include "lords/core/dtype.h"
#include "lords/core/error.h"

using namespace lords;
namespace fs = std::filesystem;

namespace {

TEST(Dtype, Fp16ToF32MatchesF16cForEveryHalf) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float hw = _cvtsh_ss(static_cast<uint16_t>(h));
    const float ours = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(hw)) {
      EXPECT_TRUE(std::isnan(ours)) << h;
    } else {
      ASSERT_EQ(std::memcmp(&hw, &ours, 4), 0) << "half 0x" << std::hex << h;
    }
  }
}

TEST(Dtype, F32ToFp16RoundsToNearestEvenLikeF16c) {
  // Every float whose bits step by 4093 (odd: visits all exponents and many mantissas), plus edges.
  for (uint64_t bits = 0; bits <= 0xffffffffULL; bits += 4093) {
    float f;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b, 4);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_fp16(f), _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)) << "float bits 0x" << std::hex << b;
  }
  for (float f : {65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f, -0.0f,
                  std::numeric_limits<float>::infinity()})
    EXPECT_EQ(f32_to_fp16(f), _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)) << f;
  EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(std::nanf("")))));
}

TEST(Dtype, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-3.5f)), -3.5f);
  // 1 + 2^-8 is halfway between two bf16 values: ties go to even (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  EXPECT_EQ(round_through(DType::F32, 0.1f), 0.1f);
  EXPECT_THROW(round_through(DType::I32, 1.0f), Error);
}

TEST(Dtype, NamesRoundTrip) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::U8, DType::I32, DType::I64, DType::Bool}) {
    DType back;
    ASSERT_TRUE(dtype_from_name(dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  DType unused;
  EXPECT_FALSE(dtype_from_name("F8_E4M3", &unused));
}

TEST(AtomicDir, CommitRenamesAndDestructorCleansUp) {
  test::TempDir tmp;
  {
    AtomicDir out(tmp.file("a"), AtomicDir::Existing::Refuse);
    write_file_atomic(out.file("x.txt"), "hello");
    EXPECT_FALSE(fs::exists(tmp.file("a")));
    out.commit();
  }
  EXPECT_EQ(test::read_bytes(tmp.file("a/x.txt")), "hello");
  {
    AtomicDir out(tmp.file("b"), AtomicDir::Existing::Refuse);
    write_file_atomic(out.file("x.txt"), "half");
  }  // not committed: nothing remains
  EXPECT_FALSE(fs::exists(tmp.file("b")));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator{}), 1);
  EXPECT_THROW(AtomicDir(tmp.file("a"), AtomicDir::Existing::Refuse), Error);  // non-empty target
  {
    AtomicDir out(tmp.file("a"), AtomicDir::Existing::Replace);
    write_file_atomic(out.file("y.txt"), "new");
    out.commit();
  }
  EXPECT_FALSE(fs::exists(tmp.file("a/x.txt")));
  EXPECT_EQ(test::read_bytes(tmp.file("a/y.txt")), "new");
  EXPECT_THROW(AtomicDir(tmp.file("missing/c"), AtomicDir::Existing::Refuse), Error);
}

}  // namespace
