// The packed-weight kernel (cpu_packed_gemm.h) against float64 products by libtorch: every
// row-count class of its register blocking (1-5 rows of a tail block, whole 6-row blocks, one tile
// per strip up to 128 rows, 48-row tiles and their tails beyond), depths in one and in several
// 512-deep slices, strip widths that are and are not multiples of 64, the fused epilogue (add,
// relu), both instruction sets the CPU runs, and its place in the process-wide GEMM selection
// (device.h).
#include "core/model/cpu_packed_gemm.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/model/cpu_gemm.h"
#include "core/model/cpu_packed_kernel.h"
#include "core/model/device.h"
#include "core/model/spin_pool.h"
#include "tests/testing/skip.h"

namespace softserve::core {
namespace {

double MaxRelativeError(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / want.abs().max()).item<double>();
}

#define SKIP_WITHOUT_PACKED_KERNEL()                                                   \
  if (!PackedGemmSupported()) SOFTSERVE_SKIP() << "this CPU runs no packed kernel (needs AVX-512F or AVX2+FMA)"

TEST(PackedMatrixTest, PacksIntoZeroPaddedStripsAndUnpacksExactly) {
  SKIP_WITHOUT_PACKED_KERNEL();
  const at::Tensor w = at::randn({5, 130});
  const PackedMatrix p = PackedMatrix::Pack(w);
  EXPECT_EQ(p.rows(), 5);
  EXPECT_EQ(p.cols(), 130);
  ASSERT_EQ(p.strips().sizes(), (std::vector<int64_t>{3, 5, 64}));
  // Strip 1, row 2, lane 3 is column 64 + 3 of row 2.
  EXPECT_EQ(p.strips()[1][2][3].item<float>(), w[2][67].item<float>());
  EXPECT_EQ(p.strips()[2].narrow(1, 2, 62).abs().sum().item<float>(), 0.f);  // past column 130
  EXPECT_TRUE(at::equal(p.Unpack(), w));
  // Any strides: the transpose of an [out, in] matrix, as T5Weights packs it.
  const at::Tensor out_in = at::randn({96, 40});
  EXPECT_TRUE(at::equal(PackedMatrix::Pack(out_in.t()).Unpack(), out_in.t()));
}

TEST(PackedMatmulTest, ProductsMatchFloat64ForEveryBlockingClass) {
  SKIP_WITHOUT_PACKED_KERNEL();
  at::manual_seed(11);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{512, 1536}, {64, 100}, {7, 5}, {200, 64}, {1, 192},
                                                           {1100, 96}};
  const int configured = CpuWorkerThreads();
  for (int threads : {1, 3}) {  // on the caller alone, and split over a SpinPool
    SetCpuWorkerThreads(threads);
    for (auto [k, n] : shapes) {
      const at::Tensor w = at::randn({k, n});
      const PackedMatrix p = PackedMatrix::Pack(w);
      for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 47, 48, 49, 97, 130}) {
        SCOPED_TRACE("threads=" + std::to_string(threads) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                     " n=" + std::to_string(n));
        const at::Tensor x = at::randn({m, k});
        const at::Tensor want = at::matmul(x.to(at::kDouble), w.to(at::kDouble));
        const at::Tensor got = PackedMatmul(x, p);
        ASSERT_EQ(got.sizes(), (std::vector<int64_t>{m, n}));
        EXPECT_LT(MaxRelativeError(got, want), 1e-5);
      }
    }
  }
  SetCpuWorkerThreads(configured);
}

TEST(PackedMatmulTest, TakesBatchedAndStridedInputsAndEmptyOnes) {
  SKIP_WITHOUT_PACKED_KERNEL();
  const at::Tensor w = at::randn({32, 80});
  const PackedMatrix p = PackedMatrix::Pack(w);
  const at::Tensor x3 = at::randn({2, 3, 32});
  const at::Tensor got3 = PackedMatmul(x3, p);
  EXPECT_EQ(got3.sizes(), (std::vector<int64_t>{2, 3, 80}));
  EXPECT_LT(MaxRelativeError(got3, at::matmul(x3.to(at::kDouble), w.to(at::kDouble))), 1e-5);
  const at::Tensor strided = at::randn({32, 9}).t();  // [9, 32], not contiguous
  EXPECT_LT(MaxRelativeError(PackedMatmul(strided, p), at::matmul(strided.to(at::kDouble), w.to(at::kDouble))),
            1e-5);
  EXPECT_EQ(PackedMatmul(at::randn({0, 32}), p).sizes(), (std::vector<int64_t>{0, 80}));
  EXPECT_THROW(PackedMatmul(at::randn({4, 31}), p), c10::Error);             // k mismatch
  EXPECT_THROW(PackedMatmul(at::randn({4, 32}, at::kDouble), p), c10::Error);  // not float32
}

// The AVX2 kernel too, where the CPU also runs AVX-512 (PackedMatmul picks the widest).
TEST(PackedKernelTest, BothInstructionSetsMatchFloat64OnOneTile) {
  SKIP_WITHOUT_PACKED_KERNEL();
  std::vector<std::pair<std::string, void (*)(const packed_kernel::Tile&)>> kernels = {
      {"avx2", &packed_kernel::RunTileAvx2}};
  if (std::string(PackedGemmIsa()) == "avx512") kernels.push_back({"avx512", &packed_kernel::RunTileAvx512});
  at::manual_seed(5);
  for (const auto& [isa, run] : kernels) {
    for (int64_t cols : {64, 40}) {
      for (int64_t rows : {1, 5, 6, 11, 48}) {
        for (int64_t k : {300, 1100}) {
          SCOPED_TRACE(isa + " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                       " k=" + std::to_string(k));
          const at::Tensor w = at::randn({k, cols});
          const PackedMatrix p = PackedMatrix::Pack(w);
          const at::Tensor a = at::randn({rows, k});
          at::Tensor c = at::full({rows, cols + 3}, 7.f);  // ldc wider than the tile: the margin stays
          packed_kernel::Tile t{a.data_ptr<float>(), k, p.strips().data_ptr<float>(), k, c.data_ptr<float>(),
                                cols + 3, rows, cols};
          run(t);
          EXPECT_LT(MaxRelativeError(c.narrow(1, 0, cols), at::matmul(a.to(at::kDouble), w.to(at::kDouble))), 1e-5);
          EXPECT_TRUE(at::all(c.narrow(1, cols, 3) == 7.f).item<bool>());
          // The epilogue: + add (its own row stride), then relu.
          const at::Tensor add = at::randn({rows, cols + 5});
          t.add = add.data_ptr<float>();
          t.ld_add = cols + 5;
          t.relu = true;
          run(t);
          const at::Tensor want = at::relu(at::matmul(a.to(at::kDouble), w.to(at::kDouble)) +
                                           add.narrow(1, 0, cols).to(at::kDouble));
          EXPECT_LT(MaxRelativeError(c.narrow(1, 0, cols), want), 1e-5);
          EXPECT_TRUE(at::all(c.narrow(1, 0, cols) >= 0).item<bool>());
        }
      }
    }
  }
}

// The epilogue is the same arithmetic as libtorch's `add + product` and relu: bit-identical,
// on full and partial strips, one and several slices of k, a tile per strip and 48-row tiles.
TEST(PackedMatmulTest, EpilogueIsBitIdenticalToLibtorchsAddAndRelu) {
  SKIP_WITHOUT_PACKED_KERNEL();
  at::manual_seed(21);
  for (auto [k, n] : std::vector<std::pair<int64_t, int64_t>>{{512, 192}, {1100, 100}, {64, 40}}) {
    const PackedMatrix p = PackedMatrix::Pack(at::randn({k, n}));
    for (int64_t m : {1, 7, 64, 130}) {
      SCOPED_TRACE("m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n));
      const at::Tensor x = at::randn({2, m, k});
      const at::Tensor residual = at::randn({2, m, n});
      const at::Tensor product = PackedMatmul(x, p);
      EXPECT_TRUE(at::equal(PackedMatmul(x, p, PackedEpilogue{residual, false}), residual + product));
      EXPECT_TRUE(at::equal(PackedMatmul(x, p, PackedEpilogue{at::Tensor(), true}), at::relu(product)));
      EXPECT_TRUE(at::equal(PackedMatmul(x, p, PackedEpilogue{residual, true}), at::relu(residual + product)));
    }
    EXPECT_THROW(PackedMatmul(at::randn({3, k}), p, PackedEpilogue{at::randn({3, n + 1}), false}), c10::Error);
  }
}

// Restores the process-wide selection the other tests in this binary expect.
class PackedSelectionTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(ConfigureCpuRuntime(2, CpuGemm::kAuto).ok()); }
};

TEST_F(PackedSelectionTest, AutoPrefersThePackedKernelWhereTheCpuRunsIt) {
  auto resolved = ResolveCpuGemm(CpuGemm::kAuto);
  ASSERT_TRUE(resolved.ok());
  auto packed = ResolveCpuGemm(CpuGemm::kPacked);
  if (PackedGemmSupported()) {
    EXPECT_EQ(*resolved, CpuGemm::kPacked);
    ASSERT_TRUE(packed.ok());
    auto rt = ConfigureCpuRuntime(2, CpuGemm::kPacked);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    EXPECT_EQ(rt->gemm, CpuGemm::kPacked);
    EXPECT_EQ(rt->worker_threads, 2);  // the kernel's tiles run on the SpinPool
    EXPECT_EQ(CpuWorkerThreads(), 2);
    EXPECT_EQ(rt->intra_op_threads, 1);  // so libtorch's OpenMP workers do not compete with it
    EXPECT_NE(rt->Describe().find(std::string("packed weights, ") + PackedGemmIsa()), std::string::npos)
        << rt->Describe();
  } else {
    EXPECT_NE(*resolved, CpuGemm::kPacked);
    ASSERT_FALSE(packed.ok());
    EXPECT_EQ(packed.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(packed.status().message().find("AVX2"), std::string::npos) << packed.status().message();
  }
}

}  // namespace
}  // namespace softserve::core
