// KvCache: the decoder state of every running row, one slot per row, for incremental decoding.
//
// Rows occupy slots [0, size()) with no holes, so each decode step runs on contiguous views.
// Per decoder layer it keeps the self-attention keys/values produced so far
// ([slots, H, decoder_tokens, d_kv]) and the cross-attention keys/values of the row's encoder
// output, computed once when the row joins ([slots, H, encoder_tokens, d_kv]). Rows have their
// own lengths: rows that joined at different times decode side by side.
//
// Memory: the whole cache is allocated once, at construction, in the shape given (a byte budget
// turned into slots by PlanKvCache); it never grows, so a step never reallocates or copies it
// and there is no 2x spike. Positions no row has reached yet are not written (on CPU their pages
// are never touched, so resident memory follows the lengths actually used); positions a step
// reads but masks are zeroed as the longest row reaches them, so they hold finite values.
// Exceeding the shape (more rows than slots, longer inputs or histories) is a caller bug and
// throws c10::Error; the engine's admission keeps within it.
// Not thread-safe: owned and used by the engine thread only.
#ifndef SOFTSERVE_CORE_MODEL_KV_CACHE_H_
#define SOFTSERVE_CORE_MODEL_KV_CACHE_H_

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <vector>

#include "core/common/status.h"
#include "core/model/t5_config.h"

namespace softserve::core {

// The fixed shape of a cache.
struct KvCacheShape {
  int64_t slots = 0;           // rows it can hold
  int64_t decoder_tokens = 0;  // decoder positions per row (start token + tokens fed)
  int64_t encoder_tokens = 0;  // encoder positions per row (prompt rows + input ids)
};

// Bytes one slot of `shape` takes for `config` in `dtype` (keys, values and the cross mask).
int64_t KvCacheSlotBytes(const T5Config& config, c10::ScalarType dtype, int64_t decoder_tokens,
                         int64_t encoder_tokens);

// The largest cache within `budget_bytes` whose rows reach `decoder_tokens`/`encoder_tokens`:
// min(max_slots, budget_bytes / slot bytes) slots. ResourceExhausted (naming the bytes one row
// needs) when the budget holds no row; InvalidArgument for non-positive sizes.
StatusOr<KvCacheShape> PlanKvCache(const T5Config& config, c10::ScalarType dtype,
                                   int64_t budget_bytes, int64_t max_slots,
                                   int64_t decoder_tokens, int64_t encoder_tokens);

class KvCache {
 public:
  // Allocates the whole cache (uninitialised; see above). Throws c10::Error when the device
  // has not the memory.
  KvCache(const T5Config& config, const c10::TensorOptions& options, const KvCacheShape& shape);
  const KvCacheShape& shape() const { return shape_; }

  // Number of rows (occupied slots).
  int64_t size() const { return static_cast<int64_t>(self_lengths_.size()); }
  // Tokens already decoded (and cached) per row.
  const std::vector<int64_t>& self_lengths() const { return self_lengths_; }
  const std::vector<int64_t>& encoder_lengths() const { return encoder_lengths_; }

  // Appends one row per entry of `source_rows`, at slots size(), size()+1, ...; row i gets the
  // cross keys/values of batch row source_rows[i] of `cross_kv` ([L, 2, B, H, S, d_kv], as
  // T5Model::ComputeCrossKv returns) and encoder length encoder_lengths[source_rows[i]].
  // Beam search passes the same source row several times. New rows start with no history.
  void Append(const at::Tensor& cross_kv, const std::vector<int64_t>& encoder_lengths,
              const std::vector<int64_t>& source_rows);

  // Drops rows: afterwards slot i holds what slot keep[i] held; size() == keep.size().
  // REQUIRES: for every i, keep[i] == i or keep[i] >= keep.size() (moves only from the tail,
  // as a swap-remove produces), all keep[i] < size() and distinct.
  void Compact(const std::vector<int64_t>& keep);

  // Beam reordering: slot dst[i] takes the self-attention history of slot src[i] (all sources
  // are read before any destination is written). Cross state is unchanged: beams of one
  // request share it. REQUIRES: equal sizes, indices < size().
  void CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src);

  // Drops every row; keeps the memory.
  void Clear();

  // Reorders rows: afterwards slot i holds what slot order[i] held. REQUIRES: `order` is a
  // permutation of [0, size()). Only rows that move are copied.
  void Permute(const std::vector<int64_t>& order);

  // For T5Model's recompute: gives rows [first, first + lengths.size()) decoder histories of
  // the given lengths; the caller then writes their keys/values into
  // self_k_storage/self_v_storage at positions [0, length).
  void SetHistoryLengths(int64_t first, const std::vector<int64_t>& lengths);

  // For T5Model: a step over rows [0, rows) (rows <= size(); the others are left as they are):
  // checks room for one more token in each, sets the views below to those rows and returns the
  // step's key length.
  int64_t ReserveStep(int64_t rows);
  // Counts the token the step fed to each of its rows.
  void AdvanceStepRows();

  // Views used by T5Model over the rows of the current step (see ReserveStep), or of every row
  // outside a step.
  at::Tensor self_k(int64_t layer, int64_t t) const;
  at::Tensor self_v(int64_t layer, int64_t t) const;
  at::Tensor& self_k_storage(int64_t layer) { return self_k_[layer]; }
  at::Tensor& self_v_storage(int64_t layer) { return self_v_[layer]; }
  at::Tensor cross_k(int64_t layer) const;
  at::Tensor cross_v(int64_t layer) const;
  // Additive mask over encoder positions, [rows, 1, 1, S] (0 valid, lowest float pad).
  at::Tensor cross_bias() const;
  int64_t max_encoder_length() const;
  int64_t view_rows() const { return step_rows_ < 0 ? size() : step_rows_; }

  // Bytes held by the cache tensors (the whole shape, allocated at construction).
  int64_t CapacityBytes() const;
  // Decoder and encoder positions written so far in every occupied slot (the high-water marks
  // that row moves copy and that steps may read).
  int64_t decoder_positions_ready() const { return decoder_ready_; }
  int64_t encoder_positions_ready() const { return encoder_ready_; }

 private:
  // Makes positions [0, t) of every occupied row finite (zeroing what no row wrote yet).
  void PrepareDecoderPositions(int64_t t);
  void PrepareEncoderPositions(int64_t s);
  // Copies whole rows src[i] -> dst[i] (sources read first), up to the ready positions.
  void MoveRows(const std::vector<int64_t>& dst, const std::vector<int64_t>& src, bool with_cross);

  T5Config config_;
  c10::TensorOptions options_;
  KvCacheShape shape_;
  int64_t decoder_ready_ = 0;
  int64_t encoder_ready_ = 0;
  std::vector<at::Tensor> self_k_, self_v_;    // per layer [slots, H, decoder_tokens, dk]
  std::vector<at::Tensor> cross_k_, cross_v_;  // per layer [slots, H, encoder_tokens, dk]
  at::Tensor cross_bias_;                      // [slots, encoder_tokens]
  std::vector<int64_t> self_lengths_;
  std::vector<int64_t> encoder_lengths_;
  int64_t step_rows_ = -1;  // rows of the current step; -1: every row
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_KV_CACHE_H_
