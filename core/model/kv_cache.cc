#include "core/model/kv_cache.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>

#include "core/model/host_to_device.h"
#include "core/model/spin_pool.h"
#include "core/model/tensor_convert.h"

namespace softserve::core {
namespace {

at::Tensor IndexTensor(const std::vector<int64_t>& v, const c10::Device& device) {
  return ToDevice(v, device);
}

// Ready positions grow by at least this factor, so zeroing them is amortised over many steps.
int64_t GrowReady(int64_t ready, int64_t needed, int64_t cap) {
  if (needed <= ready) return ready;
  return std::min(cap, std::max(needed, ready + ready / 2 + 16));
}

// Append's copy of the cross keys/values on the CPU: dst[l][which] row n + i, positions [0, s)
// <- cross_kv[l][which][source_rows[i]], memcpy per (head, position) on the worker pool. The
// source may be any view whose last dimension is contiguous (ComputeCrossKv's permuted product),
// so the encoder's output is copied once instead of made contiguous, gathered and copied again.
// Returns false where it does not apply (then libtorch copies).
bool CopyCrossRowsOnCpu(const at::Tensor& cross_kv, const std::vector<int64_t>& source_rows,
                        std::vector<at::Tensor>* k_cache, std::vector<at::Tensor>* v_cache, int64_t first) {
  if (!cross_kv.device().is_cpu() || cross_kv.stride(5) != 1 || !(*k_cache)[0].is_contiguous() ||
      cross_kv.scalar_type() != (*k_cache)[0].scalar_type()) {
    return false;
  }
  const int64_t layers = cross_kv.size(0), rows = static_cast<int64_t>(source_rows.size());
  const int64_t heads = cross_kv.size(3), s = cross_kv.size(4), dk = cross_kv.size(5);
  const int64_t element = cross_kv.element_size(), capacity = (*k_cache)[0].size(2);
  const auto* src = static_cast<const char*>(cross_kv.data_ptr());
  ParallelFor(layers * 2 * rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t l = task / (2 * rows), which = task / rows % 2, i = task % rows;
      at::Tensor& cache = which == 0 ? (*k_cache)[l] : (*v_cache)[l];
      char* dst = static_cast<char*>(cache.data_ptr()) + (first + i) * heads * capacity * dk * element;
      const char* row = src + (l * cross_kv.stride(0) + which * cross_kv.stride(1) +
                               source_rows[i] * cross_kv.stride(2)) * element;
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t p = 0; p < s; ++p) {
          std::memcpy(dst + ((h * capacity + p) * dk) * element,
                      row + (h * cross_kv.stride(3) + p * cross_kv.stride(4)) * element, dk * element);
        }
      }
    }
  });
  return true;
}

}  // namespace

int64_t KvCacheSlotBytes(const T5Config& config, c10::ScalarType dtype, int64_t decoder_tokens,
                         int64_t encoder_tokens) {
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t per_position = 2 * config.num_heads * config.d_kv * element;  // key + value
  return config.num_decoder_layers * per_position * (decoder_tokens + encoder_tokens) +
         encoder_tokens * element;  // the cross mask
}

StatusOr<KvCacheShape> PlanKvCache(const T5Config& config, c10::ScalarType dtype,
                                   int64_t budget_bytes, int64_t max_slots,
                                   int64_t decoder_tokens, int64_t encoder_tokens) {
  if (budget_bytes <= 0 || max_slots <= 0 || decoder_tokens <= 0 || encoder_tokens <= 0) {
    return InvalidArgumentError("KV cache: budget, rows and lengths must be positive (budget " +
                                std::to_string(budget_bytes) + " bytes, " + std::to_string(max_slots) +
                                " rows, " + std::to_string(decoder_tokens) + " decoder and " +
                                std::to_string(encoder_tokens) + " encoder positions)");
  }
  const int64_t slot = KvCacheSlotBytes(config, dtype, decoder_tokens, encoder_tokens);
  KvCacheShape shape{std::min(max_slots, budget_bytes / slot), decoder_tokens, encoder_tokens};
  if (shape.slots == 0) {
    return ResourceExhaustedError(
        "KV cache budget of " + std::to_string(budget_bytes) + " bytes holds no row: one row of " +
        std::to_string(encoder_tokens) + " encoder and " + std::to_string(decoder_tokens) +
        " decoder positions needs " + std::to_string(slot) +
        " bytes; raise the budget or lower the input/new-token limits");
  }
  return shape;
}

KvCache::KvCache(const T5Config& config, const c10::TensorOptions& options, const KvCacheShape& shape)
    : config_(config), options_(options), shape_(shape) {
  c10::InferenceMode guard;
  TORCH_CHECK(shape.slots > 0 && shape.decoder_tokens > 0 && shape.encoder_tokens > 0,
              "KvCache: empty shape");
  const int64_t layers = config.num_decoder_layers, h = config.num_heads, dk = config.d_kv;
  for (int64_t l = 0; l < layers; ++l) {
    self_k_.push_back(at::empty({shape.slots, h, shape.decoder_tokens, dk}, options));
    self_v_.push_back(at::empty({shape.slots, h, shape.decoder_tokens, dk}, options));
    cross_k_.push_back(at::empty({shape.slots, h, shape.encoder_tokens, dk}, options));
    cross_v_.push_back(at::empty({shape.slots, h, shape.encoder_tokens, dk}, options));
  }
  cross_bias_ = at::empty({shape.slots, shape.encoder_tokens}, options);
}

void KvCache::PrepareDecoderPositions(int64_t t) {
  TORCH_CHECK(t <= shape_.decoder_tokens, "KvCache: ", t, " decoder positions exceed the cache's ",
              shape_.decoder_tokens);
  const int64_t ready = GrowReady(decoder_ready_, t, shape_.decoder_tokens);
  if (ready == decoder_ready_) return;
  const int64_t n = size();
  if (n > 0) {
    for (size_t l = 0; l < self_k_.size(); ++l) {
      self_k_[l].narrow(0, 0, n).narrow(2, decoder_ready_, ready - decoder_ready_).zero_();
      self_v_[l].narrow(0, 0, n).narrow(2, decoder_ready_, ready - decoder_ready_).zero_();
    }
  }
  decoder_ready_ = ready;
}

void KvCache::PrepareEncoderPositions(int64_t s) {
  TORCH_CHECK(s <= shape_.encoder_tokens, "KvCache: ", s, " encoder positions exceed the cache's ",
              shape_.encoder_tokens);
  const int64_t ready = GrowReady(encoder_ready_, s, shape_.encoder_tokens);
  if (ready == encoder_ready_) return;
  const int64_t n = size(), added = ready - encoder_ready_;
  if (n > 0) {
    for (size_t l = 0; l < cross_k_.size(); ++l) {
      cross_k_[l].narrow(0, 0, n).narrow(2, encoder_ready_, added).zero_();
      cross_v_[l].narrow(0, 0, n).narrow(2, encoder_ready_, added).zero_();
    }
    // New encoder positions of existing rows are padding.
    cross_bias_.narrow(0, 0, n).narrow(1, encoder_ready_, added).fill_(MaskValue(options_));
  }
  encoder_ready_ = ready;
}

void KvCache::Append(const at::Tensor& cross_kv, const std::vector<int64_t>& encoder_lengths,
                     const std::vector<int64_t>& source_rows) {
  c10::InferenceMode guard;
  if (source_rows.empty()) return;
  const int64_t n = size(), k = static_cast<int64_t>(source_rows.size());
  const int64_t s = cross_kv.size(4);
  TORCH_CHECK(n + k <= shape_.slots, "KvCache: ", n + k, " rows exceed the cache's ", shape_.slots,
              " slots");
  PrepareEncoderPositions(s);
  const bool copied = CopyCrossRowsOnCpu(cross_kv, source_rows, &cross_k_, &cross_v_, n);
  const at::Tensor src = copied ? at::Tensor() : IndexTensor(source_rows, cross_kv.device());
  for (size_t l = 0; l < cross_k_.size(); ++l) {
    const int64_t li = static_cast<int64_t>(l);
    at::Tensor ck = cross_k_[l].narrow(0, n, k), cv = cross_v_[l].narrow(0, n, k);
    if (!copied) {
      ck.narrow(2, 0, s).copy_(cross_kv[li][0].index_select(0, src));
      cv.narrow(2, 0, s).copy_(cross_kv[li][1].index_select(0, src));
    }
    if (encoder_ready_ > s) {
      ck.narrow(2, s, encoder_ready_ - s).zero_();
      cv.narrow(2, s, encoder_ready_ - s).zero_();
    }
    if (decoder_ready_ > 0) {
      self_k_[l].narrow(0, n, k).narrow(2, 0, decoder_ready_).zero_();
      self_v_[l].narrow(0, n, k).narrow(2, 0, decoder_ready_).zero_();
    }
  }
  at::Tensor bias = cross_bias_.narrow(0, n, k).narrow(1, 0, encoder_ready_);
  bias.fill_(MaskValue(options_));
  for (int64_t i = 0; i < k; ++i) {
    const int64_t len = encoder_lengths[source_rows[i]];
    bias[i].narrow(0, 0, len).zero_();
    self_lengths_.push_back(0);
    encoder_lengths_.push_back(len);
  }
}

void KvCache::MoveRows(const std::vector<int64_t>& dst, const std::vector<int64_t>& src, bool with_cross) {
  if (dst.empty()) return;
  const c10::Device device = cross_bias_.device();
  at::Tensor d = IndexTensor(dst, device), s = IndexTensor(src, device);
  // Only the positions some row has reached are copied (sources are read before any write).
  auto move = [&](const at::Tensor& storage, int64_t dim, int64_t ready) {
    if (ready == 0) return;
    at::Tensor view = storage.narrow(dim, 0, ready);
    view.index_copy_(0, d, view.index_select(0, s));
  };
  for (size_t l = 0; l < self_k_.size(); ++l) {
    move(self_k_[l], 2, decoder_ready_);
    move(self_v_[l], 2, decoder_ready_);
    if (with_cross) {
      move(cross_k_[l], 2, encoder_ready_);
      move(cross_v_[l], 2, encoder_ready_);
    }
  }
  if (with_cross) move(cross_bias_, 1, encoder_ready_);
}

void KvCache::Compact(const std::vector<int64_t>& keep) {
  c10::InferenceMode guard;
  std::vector<int64_t> dst, src;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] != static_cast<int64_t>(i)) {
      dst.push_back(static_cast<int64_t>(i));
      src.push_back(keep[i]);
    }
  }
  MoveRows(dst, src, /*with_cross=*/true);
  std::vector<int64_t> self_lengths, encoder_lengths;
  for (int64_t k : keep) {
    self_lengths.push_back(self_lengths_[k]);
    encoder_lengths.push_back(encoder_lengths_[k]);
  }
  self_lengths_ = std::move(self_lengths);
  encoder_lengths_ = std::move(encoder_lengths);
}

void KvCache::CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) {
  c10::InferenceMode guard;
  if (dst.empty()) return;
  MoveRows(dst, src, /*with_cross=*/false);
  std::vector<int64_t> lengths = self_lengths_;
  for (size_t i = 0; i < dst.size(); ++i) lengths[dst[i]] = self_lengths_[src[i]];
  self_lengths_ = std::move(lengths);
}

void KvCache::SetHistoryLengths(int64_t first, const std::vector<int64_t>& lengths) {
  c10::InferenceMode guard;
  int64_t t = 0;
  for (int64_t len : lengths) t = std::max(t, len);
  PrepareDecoderPositions(t);
  for (size_t i = 0; i < lengths.size(); ++i) self_lengths_[first + static_cast<int64_t>(i)] = lengths[i];
}

void KvCache::Permute(const std::vector<int64_t>& order) {
  c10::InferenceMode guard;
  std::vector<int64_t> dst, src;
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] != static_cast<int64_t>(i)) {
      dst.push_back(static_cast<int64_t>(i));
      src.push_back(order[i]);
    }
  }
  if (dst.empty()) return;
  MoveRows(dst, src, /*with_cross=*/true);
  std::vector<int64_t> self_lengths = self_lengths_, encoder_lengths = encoder_lengths_;
  for (size_t i = 0; i < dst.size(); ++i) {
    self_lengths[dst[i]] = self_lengths_[src[i]];
    encoder_lengths[dst[i]] = encoder_lengths_[src[i]];
  }
  self_lengths_ = std::move(self_lengths);
  encoder_lengths_ = std::move(encoder_lengths);
}

int64_t KvCache::ReserveStep(int64_t rows) {
  c10::InferenceMode guard;
  int64_t t = 0;
  for (int64_t i = 0; i < rows; ++i) t = std::max(t, self_lengths_[i] + 1);
  PrepareDecoderPositions(t);  // throws, leaving the cache as it was, past the shape
  step_rows_ = rows;
  return t;
}

void KvCache::AdvanceStepRows() {
  for (int64_t i = 0; i < view_rows(); ++i) ++self_lengths_[i];
  step_rows_ = -1;
}

at::Tensor KvCache::self_k(int64_t layer, int64_t t) const {
  return self_k_[layer].narrow(0, 0, view_rows()).narrow(2, 0, t);
}
at::Tensor KvCache::self_v(int64_t layer, int64_t t) const {
  return self_v_[layer].narrow(0, 0, view_rows()).narrow(2, 0, t);
}
at::Tensor KvCache::cross_k(int64_t layer) const {
  return cross_k_[layer].narrow(0, 0, view_rows()).narrow(2, 0, max_encoder_length());
}
at::Tensor KvCache::cross_v(int64_t layer) const {
  return cross_v_[layer].narrow(0, 0, view_rows()).narrow(2, 0, max_encoder_length());
}
at::Tensor KvCache::cross_bias() const {
  return cross_bias_.narrow(0, 0, view_rows()).narrow(1, 0, max_encoder_length()).unsqueeze(1).unsqueeze(1);
}

int64_t KvCache::max_encoder_length() const {
  int64_t s = 0;
  for (int64_t i = 0; i < view_rows(); ++i) s = std::max(s, encoder_lengths_[i]);
  return s;
}

void KvCache::Clear() {
  self_lengths_.clear();
  encoder_lengths_.clear();
  step_rows_ = -1;
  decoder_ready_ = 0;
  encoder_ready_ = 0;
}

int64_t KvCache::CapacityBytes() const {
  int64_t bytes = cross_bias_.numel() * cross_bias_.element_size();
  for (size_t l = 0; l < self_k_.size(); ++l) {
    for (const at::Tensor* t : {&self_k_[l], &self_v_[l], &cross_k_[l], &cross_v_[l]}) {
      bytes += t->numel() * t->element_size();
    }
  }
  return bytes;
}

}  // namespace softserve::core
