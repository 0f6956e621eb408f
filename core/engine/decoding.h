// Per-request decoding strategies as small state machines over the runner's row outputs:
// greedy, sampling and Hugging Face's beam search (BeamSearchScorer / BeamHypotheses semantics:
// 2K candidates per step, eos hypotheses only from the top K ranks, length penalty on the
// length including the start token, early_stopping true / false / "never").
//
// A decoder owns num_rows() rows of the batch. Each step the engine asks for the tokens to feed
// (Inputs) and how to choose (Selections), runs the model, and hands the rows' outputs to
// Advance, which may reorder rows (beams). No libtorch: unit-tested with synthetic outputs.
// Not thread-safe.
#ifndef SOFTSERVE_CORE_ENGINE_DECODING_H_
#define SOFTSERVE_CORE_ENGINE_DECODING_H_

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "core/engine/model_runner.h"
#include "core/engine/request.h"

namespace softserve::core {

struct SpecialTokens {
  int64_t eos = 1;
  int64_t decoder_start = 0;
};

class SequenceDecoder {
 public:
  virtual ~SequenceDecoder() = default;

  // REQUIRES: params validated (max_new_tokens >= 1, num_beams >= 1, temperature > 0, ...).
  static std::unique_ptr<SequenceDecoder> Create(const DecodingParams& params,
                                                 const SpecialTokens& special);

  virtual int num_rows() const = 0;
  // Appends the token each row consumes this step.
  virtual void Inputs(std::vector<int64_t>* tokens) const = 0;
  // Appends, per row, the tokens the row has already fed to the model (the decoder start token
  // first); empty vectors before the first step. A runner that recomputes a row's decoder state
  // from these (after preemption or a failed step) continues it exactly where it was.
  virtual void Histories(std::vector<std::vector<int64_t>>* out) const = 0;
  // Appends each row's selection (sampling draws its uniform number here).
  virtual void Selections(std::vector<RowSelection>* out) = 0;
  // Consumes outputs[0, num_rows()). Fills reorder[r] = the row whose history row r continues
  // (identity for greedy/sampling). Appends tokens to stream, if any, to `emitted`.
  virtual void Advance(const RowOutput* outputs, std::vector<int>* reorder,
                       std::vector<TokenChoice>* emitted) = 0;
  // Ends the sequence now with what it has (the engine's stop sequences and time limits):
  // greedy and sampling keep their tokens; beam search takes the best of its finished and live
  // hypotheses. The finish reason is `reason` unless the output already ended with eos.
  // No-op once done().
  virtual void Stop(FinishReason reason) = 0;
  virtual bool done() const = 0;
  // REQUIRES: done().
  virtual GenerationResult Result() const = 0;
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_DECODING_H_
