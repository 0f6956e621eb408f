#include "core/model/kv_cache.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

#include "core/model/host_to_device.h"
#include "core/model/tensor_convert.h"

namespace softserve::core {
namespace {

// Copies rows [0, rows) of `old` into a bigger zero tensor of `shape`.
at::Tensor Grow(const at::Tensor& old, const std::vector<int64_t>& shape, int64_t rows) {
  at::Tensor fresh = at::zeros(shape, old.options());
  if (rows > 0) {
    at::Tensor dst = fresh.narrow(0, 0, rows);
    at::Tensor src = old.narrow(0, 0, rows);
    for (int64_t dim = 1; dim < src.dim(); ++dim) dst = dst.narrow(dim, 0, src.size(dim));
    dst.copy_(src);
  }
  return fresh;
}

int64_t NextCapacity(int64_t current, int64_t needed, int64_t minimum) {
  int64_t cap = std::max(current, minimum);
  while (cap < needed) cap = cap + cap / 2 + 1;
  return cap;
}

at::Tensor IndexTensor(const std::vector<int64_t>& v, const c10::Device& device) {
  return ToDevice(v, device);
}

}  // namespace

KvCache::KvCache(const T5Config& config, const c10::TensorOptions& options)
    : config_(config), options_(options) {
  c10::InferenceMode guard;
  const int64_t layers = config.num_decoder_layers;
  self_k_.resize(layers);
  self_v_.resize(layers);
  cross_k_.resize(layers);
  cross_v_.resize(layers);
  slot_capacity_ = 4;
  encoder_capacity_ = 16;
  decoder_capacity_ = 16;
  const int64_t h = config.num_heads, dk = config.d_kv;
  for (int64_t l = 0; l < layers; ++l) {
    self_k_[l] = at::zeros({slot_capacity_, h, decoder_capacity_, dk}, options);
    self_v_[l] = at::zeros({slot_capacity_, h, decoder_capacity_, dk}, options);
    cross_k_[l] = at::zeros({slot_capacity_, h, encoder_capacity_, dk}, options);
    cross_v_[l] = at::zeros({slot_capacity_, h, encoder_capacity_, dk}, options);
  }
  cross_bias_ = at::zeros({slot_capacity_, encoder_capacity_}, options);
}

void KvCache::EnsureSlots(int64_t slots) {
  if (slots <= slot_capacity_) return;
  slot_capacity_ = NextCapacity(slot_capacity_, slots, 4);
  const int64_t h = config_.num_heads, dk = config_.d_kv, n = size();
  for (size_t l = 0; l < self_k_.size(); ++l) {
    self_k_[l] = Grow(self_k_[l], {slot_capacity_, h, decoder_capacity_, dk}, n);
    self_v_[l] = Grow(self_v_[l], {slot_capacity_, h, decoder_capacity_, dk}, n);
    cross_k_[l] = Grow(cross_k_[l], {slot_capacity_, h, encoder_capacity_, dk}, n);
    cross_v_[l] = Grow(cross_v_[l], {slot_capacity_, h, encoder_capacity_, dk}, n);
  }
  cross_bias_ = Grow(cross_bias_, {slot_capacity_, encoder_capacity_}, n);
}

void KvCache::EnsureEncoderCapacity(int64_t s) {
  if (s <= encoder_capacity_) return;
  encoder_capacity_ = NextCapacity(encoder_capacity_, s, 16);
  const int64_t h = config_.num_heads, dk = config_.d_kv, n = size();
  for (size_t l = 0; l < cross_k_.size(); ++l) {
    cross_k_[l] = Grow(cross_k_[l], {slot_capacity_, h, encoder_capacity_, dk}, n);
    cross_v_[l] = Grow(cross_v_[l], {slot_capacity_, h, encoder_capacity_, dk}, n);
  }
  // New encoder positions of existing rows are padding.
  at::Tensor bias = at::full({slot_capacity_, encoder_capacity_},
                             MaskValue(options_), options_);
  if (n > 0) bias.narrow(0, 0, n).narrow(1, 0, cross_bias_.size(1)).copy_(cross_bias_.narrow(0, 0, n));
  cross_bias_ = bias;
}

void KvCache::EnsureDecoderCapacity(int64_t t) {
  if (t <= decoder_capacity_) return;
  decoder_capacity_ = NextCapacity(decoder_capacity_, t, 16);
  const int64_t h = config_.num_heads, dk = config_.d_kv, n = size();
  for (size_t l = 0; l < self_k_.size(); ++l) {
    self_k_[l] = Grow(self_k_[l], {slot_capacity_, h, decoder_capacity_, dk}, n);
    self_v_[l] = Grow(self_v_[l], {slot_capacity_, h, decoder_capacity_, dk}, n);
  }
}

void KvCache::Append(const at::Tensor& cross_kv, const std::vector<int64_t>& encoder_lengths,
                     const std::vector<int64_t>& source_rows) {
  c10::InferenceMode guard;
  if (source_rows.empty()) return;
  const int64_t n = size(), k = static_cast<int64_t>(source_rows.size());
  const int64_t s = cross_kv.size(4);
  EnsureSlots(n + k);
  EnsureEncoderCapacity(s);
  at::Tensor src = IndexTensor(source_rows, cross_kv.device());
  for (size_t l = 0; l < cross_k_.size(); ++l) {
    const int64_t li = static_cast<int64_t>(l);
    cross_k_[l].narrow(0, n, k).narrow(2, 0, s).copy_(cross_kv[li][0].index_select(0, src));
    cross_v_[l].narrow(0, n, k).narrow(2, 0, s).copy_(cross_kv[li][1].index_select(0, src));
    self_k_[l].narrow(0, n, k).zero_();
    self_v_[l].narrow(0, n, k).zero_();
  }
  at::Tensor bias = cross_bias_.narrow(0, n, k);
  bias.fill_(MaskValue(options_));
  for (int64_t i = 0; i < k; ++i) {
    const int64_t len = encoder_lengths[source_rows[i]];
    bias[i].narrow(0, 0, len).zero_();
    self_lengths_.push_back(0);
    encoder_lengths_.push_back(len);
  }
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
  if (!dst.empty()) {
    const c10::Device device = cross_bias_.device();
    at::Tensor d = IndexTensor(dst, device), s = IndexTensor(src, device);
    for (size_t l = 0; l < self_k_.size(); ++l) {
      for (at::Tensor* t : {&self_k_[l], &self_v_[l], &cross_k_[l], &cross_v_[l]}) {
        t->index_copy_(0, d, t->index_select(0, s));
      }
    }
    cross_bias_.index_copy_(0, d, cross_bias_.index_select(0, s));
  }
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
  const c10::Device device = cross_bias_.device();
  at::Tensor d = IndexTensor(dst, device), s = IndexTensor(src, device);
  for (size_t l = 0; l < self_k_.size(); ++l) {
    self_k_[l].index_copy_(0, d, self_k_[l].index_select(0, s));
    self_v_[l].index_copy_(0, d, self_v_[l].index_select(0, s));
  }
  std::vector<int64_t> lengths = self_lengths_;
  for (size_t i = 0; i < dst.size(); ++i) lengths[dst[i]] = self_lengths_[src[i]];
  self_lengths_ = std::move(lengths);
}

void KvCache::SetHistoryLengths(int64_t first, const std::vector<int64_t>& lengths) {
  c10::InferenceMode guard;
  int64_t t = 0;
  for (int64_t len : lengths) t = std::max(t, len);
  EnsureDecoderCapacity(t);
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
  const c10::Device device = cross_bias_.device();
  at::Tensor d = IndexTensor(dst, device), s = IndexTensor(src, device);
  for (size_t l = 0; l < self_k_.size(); ++l) {
    for (at::Tensor* t : {&self_k_[l], &self_v_[l], &cross_k_[l], &cross_v_[l]}) {
      t->index_copy_(0, d, t->index_select(0, s));  // sources are read before any write
    }
  }
  cross_bias_.index_copy_(0, d, cross_bias_.index_select(0, s));
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
  step_rows_ = rows;
  int64_t t = 0;
  for (int64_t i = 0; i < rows; ++i) t = std::max(t, self_lengths_[i] + 1);
  EnsureDecoderCapacity(t);
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
