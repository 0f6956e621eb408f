#include "core/model/cpu_packed_gemm.h"

#include <algorithm>
#include <memory>
#include <vector>

#include <torch/csrc/autograd/custom_function.h>

#include "core/model/cpu_packed_kernel.h"
#include "core/model/spin_pool.h"

namespace softserve::core {
namespace {

using packed_kernel::kStripWidth;
using packed_kernel::Tile;
using TileFn = void (*)(const Tile&);

// Rows per tile: enough that a strip read from L2 serves many rows, few enough that a prefill's
// thousands of rows still split into tiles for every thread. Up to kWholeTileRows rows (a decode
// step's) are one tile per strip: split in two, both threads would read every strip from memory.
constexpr int64_t kTileRows = 48;
constexpr int64_t kWholeTileRows = 128;
// Products below this many multiply-adds run on the calling thread (a fork/join costs more).
constexpr int64_t kParallelWork = int64_t{1} << 18;

TileFn DetectKernel() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return &packed_kernel::RunTileAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &packed_kernel::RunTileAvx2;
#endif
  return nullptr;
}

TileFn Kernel() {
  static const TileFn fn = DetectKernel();
  return fn;
}

// One PackedMatmul's operands, for the pool's tasks.
struct Product {
  TileFn kernel;
  const float* a;
  const float* packed;
  float* c;
  int64_t m, k, n, tile_rows, row_tiles;
  const float* add;  // [m, n] or null
  bool relu;

  // Tiles in strip-major order: a strip's row tiles are consecutive, so a strip read from memory
  // once serves them from L2 when they run on one thread.
  void RunTile(int64_t i) const {
    const int64_t s = i / row_tiles, r0 = (i % row_tiles) * tile_rows;
    Tile t;
    t.a = a + r0 * k;
    t.lda = k;
    t.strip = packed + s * k * kStripWidth;
    t.k = k;
    t.c = c + r0 * n + s * kStripWidth;
    t.ldc = n;
    t.rows = std::min(tile_rows, m - r0);
    t.cols = std::min(kStripWidth, n - s * kStripWidth);
    if (add != nullptr) {
      t.add = add + r0 * n + s * kStripWidth;
      t.ld_add = n;
    }
    t.relu = relu;
    kernel(t);
  }
};

}  // namespace

bool PackedGemmSupported() { return Kernel() != nullptr; }

const char* PackedGemmIsa() {
  const TileFn fn = Kernel();
  if (fn == nullptr) return "none";
  return fn == &packed_kernel::RunTileAvx512 ? "avx512" : "avx2";
}

PackedMatrix PackedMatrix::Pack(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu(),
              "PackedMatrix::Pack needs a float32 CPU matrix, got ", w.sizes(), " ", w.scalar_type());
  const int64_t k = w.size(0), n = w.size(1);
  const int64_t strips = (n + kStripWidth - 1) / kStripWidth;
  const at::Tensor padded = at::constant_pad_nd(w, {0, strips * kStripWidth - n});
  PackedMatrix m;
  m.strips_ = padded.view({k, strips, kStripWidth}).permute({1, 0, 2}).contiguous();
  m.cols_ = n;
  return m;
}

at::Tensor PackedMatrix::Unpack() const {
  if (!defined()) return at::Tensor();
  return strips_.permute({1, 0, 2}).reshape({rows(), -1}).narrow(1, 0, cols_).contiguous();
}

at::Tensor PackedMatmul(const at::Tensor& x, const PackedMatrix& w, const PackedEpilogue& epilogue) {
  TORCH_CHECK(w.defined() && x.scalar_type() == at::kFloat && x.device().is_cpu() && x.dim() >= 1 &&
                  x.size(-1) == w.rows(),
              "PackedMatmul: x ", x.sizes(), " ", x.scalar_type(), " does not fit a packed [", w.rows(), ", ",
              w.cols(), "] float32 matrix");
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = w.cols();
  const int64_t k = w.rows(), n = w.cols();
  const at::Tensor rows = x.reshape({-1, k}).contiguous();
  const int64_t m = rows.size(0);
  at::Tensor add;
  if (epilogue.add.defined()) {
    TORCH_CHECK(epilogue.add.scalar_type() == at::kFloat && epilogue.add.device().is_cpu() &&
                    epilogue.add.sizes() == at::IntArrayRef(shape),
                "PackedMatmul: the epilogue's add ", epilogue.add.sizes(), " is not the float32 CPU result's shape");
    add = epilogue.add.reshape({m, n}).contiguous();
  }
  at::Tensor out = at::empty({m, n}, rows.options());
  if (m == 0 || n == 0) return out.view(shape);
  if (k == 0) {  // the epilogue on an all-zero product
    out.zero_();
    if (add.defined()) out.add_(add);
    if (epilogue.relu) out.clamp_min_(0);
    return out.view(shape);
  }
  const TileFn kernel = Kernel();
  TORCH_CHECK(kernel != nullptr, "PackedMatmul: this CPU has neither AVX-512F nor AVX2+FMA");

  const int64_t tile_rows = m <= kWholeTileRows ? m : kTileRows;
  const int64_t row_tiles = (m + tile_rows - 1) / tile_rows;
  Product p{kernel, rows.data_ptr<float>(), w.strips().data_ptr<float>(), out.data_ptr<float>(),
            m, k, n, tile_rows, row_tiles, add.defined() ? add.data_ptr<float>() : nullptr, epilogue.relu};
  const int64_t tiles = w.strips().size(0) * row_tiles;
  const std::shared_ptr<SpinPool> pool = m * k * n < kParallelWork ? nullptr : CpuWorkerPool();
  if (pool == nullptr) {
    for (int64_t i = 0; i < tiles; ++i) p.RunTile(i);
  } else {
    pool->Run(tiles, [](void* product, int64_t i) { static_cast<const Product*>(product)->RunTile(i); }, &p);
  }
  return out.view(shape);
}

namespace {

// dX [m, k] = dY [m, n] w^T from the strips [S, k, 64] (zero past column n): for each chunk of
// strips, bmm(dY's columns as [c, m, 64], strips^T [c, 64, k]) summed over the chunk. Chunks
// keep the [c, m, k] temporary near 32 MB.
at::Tensor PackedTransposedProduct(const at::Tensor& dy, const at::Tensor& strips, int64_t n) {
  const int64_t m = dy.size(0), num_strips = strips.size(0), k = strips.size(1);
  at::Tensor g = dy;
  if (num_strips * kStripWidth != n) g = at::constant_pad_nd(dy, {0, num_strips * kStripWidth - n});
  const at::Tensor by_strip = g.view({m, num_strips, kStripWidth}).permute({1, 0, 2});  // [S, m, 64]
  const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / std::max<int64_t>(1, m * k));
  at::Tensor dx = at::zeros({m, k}, dy.options());
  for (int64_t s = 0; s < num_strips; s += chunk) {
    const int64_t c = std::min(chunk, num_strips - s);
    dx.add_(at::bmm(by_strip.narrow(0, s, c), strips.narrow(0, s, c).transpose(1, 2)).sum(0));
  }
  return dx;
}

class PackedMatmulFunction : public torch::autograd::Function<PackedMatmulFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const PackedMatrix* w) {
    ctx->saved_data["strips"] = w->strips();
    ctx->saved_data["cols"] = w->cols();
    ctx->saved_data["x_shape"] = x.sizes().vec();
    return PackedMatmul(x, *w);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor strips = ctx->saved_data["strips"].toTensor();
    const int64_t n = ctx->saved_data["cols"].toInt();
    const std::vector<int64_t> shape = ctx->saved_data["x_shape"].toIntVector();
    const at::Tensor dy = grad_outputs[0].reshape({-1, n}).contiguous();
    return {PackedTransposedProduct(dy, strips, n).view(shape), at::Tensor()};
  }
};

}  // namespace

at::Tensor PackedMatmulWithGrad(const at::Tensor& x, const PackedMatrix& w) {
  return PackedMatmulFunction::apply(x, &w);
}

}  // namespace softserve::core
