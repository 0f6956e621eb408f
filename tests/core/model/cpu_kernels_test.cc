// The CPU kernels against float64 computations by libtorch: CpuMatmul on both GEMMs (and the
// process-wide selection and thread setup, cpu_gemm.h, device.h), CpuRmsNorm (cpu_norm.h),
// CpuAttention (cpu_attention.h).
#include "core/model/cpu_gemm.h"
#include "core/model/cpu_norm.h"
#include "core/model/cpu_attention.h"

#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "core/model/device.h"
#include "core/model/spin_pool.h"

namespace softserve::core {
namespace {

// Restores the process-wide selection the other tests in this binary expect.
class CpuGemmTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(ConfigureCpuRuntime(2, CpuGemm::kAuto).ok()); }
};

double MaxRelativeError(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / want.abs().max()).item<double>();
}

TEST(CpuGemmParseTest, NamesRoundTripAndUnknownNamesAreRefused) {
  for (CpuGemm g : {CpuGemm::kAuto, CpuGemm::kPacked, CpuGemm::kOneDnn, CpuGemm::kTorch}) {
    auto parsed = ParseCpuGemm(CpuGemmName(g));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, g);
  }
  auto bad = ParseCpuGemm("mkl");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("auto, packed, onednn or torch"), std::string::npos) << bad.status().message();
}

// Debian's libtorch (1.13 in Debian 12, 2.6 in Debian 13, the two CI builds against) links
// oneDNN: if this fails, CPUs without the packed kernel silently lost their fast GEMM.
TEST_F(CpuGemmTest, OneDnnIsSelectableWhereLibtorchLinksIt) {
  ASSERT_TRUE(OneDnnSgemmAvailable()) << "this libtorch exports no dnnl_sgemm";
  auto rt = ConfigureCpuRuntime(2, CpuGemm::kOneDnn);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  EXPECT_EQ(rt->gemm, CpuGemm::kOneDnn);
  EXPECT_EQ(ActiveCpuGemm(), CpuGemm::kOneDnn);
  EXPECT_EQ(rt->intra_op_threads, 2);  // oneDNN runs on libtorch's OpenMP pool
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(rt->blas_threads, 2);  // single-row GEMVs
  EXPECT_NE(rt->Describe().find("oneDNN"), std::string::npos) << rt->Describe();

  auto torch = ConfigureCpuRuntime(2, CpuGemm::kTorch);
  ASSERT_TRUE(torch.ok());
  EXPECT_EQ(torch->gemm, CpuGemm::kTorch);
  EXPECT_EQ(ActiveCpuGemm(), CpuGemm::kTorch);
  if (torch->separate_blas_pool) {
    EXPECT_EQ(torch->blas_threads, 2);
    EXPECT_EQ(torch->intra_op_threads, 1);
  }
}

// Every shape class a T5 step produces: one row (GEMV), a few rows, many rows, 3-D inputs, a
// non-contiguous input, and weights stored [in, out] or as the transpose of [out, in].
TEST_F(CpuGemmTest, ProductsMatchFloat64OnBothGemms) {
  for (CpuGemm gemm : {CpuGemm::kOneDnn, CpuGemm::kTorch}) {
    ASSERT_TRUE(ConfigureCpuRuntime(2, gemm).ok());
    at::manual_seed(7);
    for (int64_t m : {1, 3, 8, 33, 130}) {
      for (auto [k, n] : {std::pair<int64_t, int64_t>{64, 96}, {512, 1536}, {200, 1000}}) {
        const at::Tensor x = at::randn({m, k});
        const at::Tensor w = at::randn({k, n});
        const at::Tensor w_transposed = w.t().contiguous().t();  // same values, [out, in] storage
        const at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble));
        SCOPED_TRACE(std::string(CpuGemmName(gemm)) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                     " n=" + std::to_string(n));
        EXPECT_LT(MaxRelativeError(CpuMatmul(x, w), want), 1e-5);
        EXPECT_LT(MaxRelativeError(CpuMatmul(x, w_transposed), want), 1e-5);
        const at::Tensor x3 = x.view({1, m, k});
        const at::Tensor got3 = CpuMatmul(x3, w);
        EXPECT_EQ(got3.sizes(), (std::vector<int64_t>{1, m, n}));
        EXPECT_LT(MaxRelativeError(got3[0], want), 1e-5);
        const at::Tensor strided = at::randn({k, m}).t();  // [m, k], not contiguous
        EXPECT_LT(MaxRelativeError(CpuMatmul(strided, w),
                                   at::matmul(strided.to(at::kDouble), w.to(at::kDouble))),
                  1e-5);
      }
    }
  }
}

// What oneDNN's sgemm cannot take goes to libtorch and is still right.
TEST_F(CpuGemmTest, OtherDtypesAndLayoutsFallBackToLibtorch) {
  ASSERT_TRUE(ConfigureCpuRuntime(2, CpuGemm::kOneDnn).ok());
  const at::Tensor x = at::randn({4, 32}), w = at::randn({32, 48});
  const at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble));
  EXPECT_LT(MaxRelativeError(CpuMatmul(x.to(at::kDouble), w.to(at::kDouble)), want), 1e-12);
  EXPECT_LT(MaxRelativeError(CpuMatmul(x.to(at::kBFloat16), w.to(at::kBFloat16)), want), 2e-2);
  const at::Tensor every_other_column = at::randn({32, 96}).slice(1, 0, 96, 2);  // neither layout
  EXPECT_LT(MaxRelativeError(CpuMatmul(x, every_other_column),
                             at::matmul(x.to(at::kDouble), every_other_column.to(at::kDouble))),
            1e-5);
  EXPECT_EQ(CpuMatmul(at::randn({0, 32}), w).sizes(), (std::vector<int64_t>{0, 48}));
}

// Hugging Face's T5LayerNorm in float64: x * rsqrt(mean(x^2) + eps) * weight.
TEST(CpuRmsNormTest, MatchesTheFormulaInFloat64) {
  at::manual_seed(3);
  const at::Tensor weight = at::rand({512}) + 0.5;
  SetCpuWorkerThreads(3);  // 300 rows split over the worker pool
  for (const at::Tensor& x :
       {at::randn({1, 1, 512}), at::randn({3, 5, 512}) * 4, at::randn({512, 70}).t(), at::randn({300, 512})}) {
    ASSERT_TRUE(CanUseCpuRmsNorm(x, weight));
    const at::Tensor xd = x.to(at::kDouble);
    const at::Tensor want = xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-6) * weight.to(at::kDouble);
    const at::Tensor got = CpuRmsNorm(x, weight, 1e-6);
    EXPECT_EQ(got.sizes(), x.sizes());
    EXPECT_LT(MaxRelativeError(got, want), 1e-6);
  }
  EXPECT_FALSE(CanUseCpuRmsNorm(at::randn({2, 512}, at::kBFloat16), weight));
  EXPECT_FALSE(CanUseCpuRmsNorm(at::randn({2, 256}), weight));
  ASSERT_TRUE(ConfigureCpuRuntime(2, CpuGemm::kAuto).ok());
}

// Attention in float64: softmax(q . k + bias + mask) @ v, on strided cache views, for d_kv = 64
// and 32, one query (decoding) and several (the encoder: queries as strided as SplitHeads3
// leaves them, a bias per query), one key to 84 keys, padded keys at the float's lowest value
// (as T5Model masks) and scores spread wide enough that exp underflows for some keys.
TEST(CpuAttentionTest, MatchesTheFormulaInFloat64) {
  at::manual_seed(9);
  SetCpuWorkerThreads(3);
  const int64_t n = 3, heads = 4, slots = 5, capacity = 90;
  for (int64_t dk : {64, 32}) {
    for (int64_t t : {1, 17, 84}) {
      for (int64_t queries : {int64_t{1}, t}) {
        SCOPED_TRACE("dk=" + std::to_string(dk) + " t=" + std::to_string(t) + " queries=" + std::to_string(queries));
        // [n, queries, 3, heads, dk] viewed as [n, heads, queries, dk], as the encoder's queries.
        const at::Tensor q = (at::randn({n, queries, 3, heads, dk}) * 3).select(2, 0).transpose(1, 2);
        const at::Tensor k = at::randn({slots, heads, capacity, dk}).narrow(0, 0, n).narrow(2, 0, t);
        const at::Tensor v = at::randn({slots, heads, capacity, dk}).narrow(0, 0, n).narrow(2, 0, t);
        const at::Tensor bias = at::randn({1, heads, queries, t}) * 10;
        at::Tensor mask = at::zeros({n, 1, 1, t});
        if (t > 1) mask[1].narrow(-1, 1, t - 1).fill_(std::numeric_limits<float>::lowest());  // row 1: one key
        if (t > 5) mask[2].narrow(-1, t - 5, 5).fill_(std::numeric_limits<float>::lowest());
        ASSERT_TRUE(CanUseCpuAttention(q, k, v));
        const at::Tensor scores =
            at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-1, -2)) + bias.to(at::kDouble);
        auto attend = [&](const at::Tensor& s) {
          return at::matmul(at::softmax(s, -1), v.to(at::kDouble)).transpose(1, 2).reshape({n, queries, heads * dk});
        };
        const at::Tensor got = CpuAttention(q, k, v, bias, mask);
        ASSERT_EQ(got.sizes(), (std::vector<int64_t>{n, queries, heads * dk}));
        EXPECT_LT(MaxRelativeError(got, attend(scores + mask.to(at::kDouble))), 1e-5);
        EXPECT_LT(MaxRelativeError(CpuAttention(q, k, v, bias, at::Tensor()), attend(scores)), 1e-5);
      }
    }
  }
  ASSERT_TRUE(ConfigureCpuRuntime(2, CpuGemm::kAuto).ok());
}

}  // namespace
}  // namespace softserve::core
