#include "core/engine/t5_runner.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "core/engine/cost.h"
#include "core/engine/sampler.h"
#include "core/model/host_to_device.h"
#include "core/model/tensor_convert.h"

namespace softserve::core {
namespace {

Status FromTorchError(const c10::Error& e, const std::string& what) {
  std::string msg = e.what_without_backtrace();
  if (msg.find("out of memory") != std::string::npos) {
    return ResourceExhaustedError(what + ": device out of memory: " + msg);
  }
  return InternalError(what + ": " + msg);
}

std::vector<float> ToFloats(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<int64_t> ToLongs(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

StatusOr<std::unique_ptr<T5Runner>> T5Runner::Create(std::shared_ptr<const T5Model> model,
                                                     const T5RunnerOptions& options,
                                                     EngineLimits* limits) {
  const int64_t decoder_tokens = limits->max_new_tokens;
  const int64_t encoder_tokens = limits->max_prompt_rows + limits->max_input_tokens;
  const c10::ScalarType dtype = model->scalar_type();
  if (options.kv_cache_bytes < 0 || options.kv_cache_memory_fraction < 0 ||
      options.kv_cache_memory_fraction > 1 ||
      (options.kv_cache_bytes > 0 && options.kv_cache_memory_fraction > 0)) {
    return InvalidArgumentError(
        "KV cache: give either a byte budget (> 0) or a fraction of free device memory in (0, 1], "
        "not both");
  }
  int64_t budget = options.kv_cache_bytes;
  if (options.kv_cache_memory_fraction > 0) {
    StatusOr<DeviceMemory> memory_or = QueryDeviceMemory(model->options().device);
    if (!memory_or.ok()) {
      return Status(memory_or.status().code(),
                    "KV cache as a fraction of free device memory: " + memory_or.status().message());
    }
    const DeviceMemory memory = *memory_or;
    budget = static_cast<int64_t>(options.kv_cache_memory_fraction * static_cast<double>(memory.free_bytes));
  } else if (budget == 0) {
    budget = limits->max_rows * KvCacheSlotBytes(model->config(), dtype, decoder_tokens, encoder_tokens);
  }
  SOFTSERVE_ASSIGN_OR_RETURN(KvCacheShape shape,
                             PlanKvCache(model->config(), dtype, budget, limits->max_rows,
                                         decoder_tokens, encoder_tokens));
  try {
    auto runner = std::make_unique<T5Runner>(std::move(model), shape, options.prompt_cache_bytes,
                                             options.prefill_chunk_tokens);
    limits->max_rows = shape.slots;
    return runner;
  } catch (const c10::Error& e) {
    return FromTorchError(e, "KV cache of " + std::to_string(budget) + " bytes");
  }
}

T5Runner::T5Runner(std::shared_ptr<const T5Model> model, const KvCacheShape& kv_shape,
                   int64_t prompt_cache_bytes, int64_t prefill_chunk_tokens)
    : model_(std::move(model)),
      cache_(model_->NewCache(kv_shape)),
      prompt_cache_(prompt_cache_bytes, model_->tensor_options()),
      prefill_chunk_tokens_(prefill_chunk_tokens >= 0 ? prefill_chunk_tokens
                            : model_->options().device.kind == DeviceKind::kCpu ? kCpuPrefillChunkTokens
                                                                : 0) {}

std::string T5Runner::Describe() const {
  return model_->options().device.ToString() + " " + DTypeName(model_->options().dtype);
}

at::Tensor T5Runner::PromptTensor(const Prompt* prompt) const {
  if (prompt == nullptr) return at::Tensor();
  return prompt_cache_.Get(*prompt);  // copied to the device once, then reused
}

EncoderBatch T5Runner::Embed(
    const std::vector<std::pair<const std::vector<int64_t>*, const Prompt*>>& rows) const {
  std::vector<EncoderRow> enc;
  enc.reserve(rows.size());
  for (const auto& [ids, prompt] : rows) enc.push_back(EncoderRow{PromptTensor(prompt), *ids});
  return model_->EmbedRows(enc);
}

namespace {

// Encoder positions of an item's row: its prompt's rows and its ids.
int64_t EncoderPositions(const PrefillItem& item) {
  return (item.prompt != nullptr ? item.prompt->rows() : 0) + static_cast<int64_t>(item.input_ids->size());
}

}  // namespace

size_t PrefillChunkEnd(const std::vector<PrefillItem>& items, size_t first, int64_t max_tokens) {
  if (max_tokens <= 0) return items.size();
  size_t end = first + 1;
  int64_t widest = EncoderPositions(items[first]);
  for (; end < items.size(); ++end) {
    const int64_t wider = std::max(widest, EncoderPositions(items[end]));
    if (wider * static_cast<int64_t>(end + 1 - first) > max_tokens) break;
    widest = wider;
  }
  return end;
}

void T5Runner::EncodeIntoCache(const std::vector<PrefillItem>& items, size_t first, size_t end) {
  std::vector<std::pair<const std::vector<int64_t>*, const Prompt*>> rows;
  std::vector<int64_t> sources;
  for (size_t i = first; i < end; ++i) {
    rows.push_back({items[i].input_ids, items[i].prompt});
    for (int c = 0; c < items[i].copies; ++c) sources.push_back(static_cast<int64_t>(i - first));
  }
  EncoderBatch batch = Embed(rows);
  at::Tensor kv = model_->ComputeCrossKv(model_->Encode(batch));
  cache_.Append(kv, batch.lengths, sources);
}

Status T5Runner::Prefill(const std::vector<PrefillItem>& items) {
  if (items.empty()) return OkStatus();
  const int64_t before = cache_.size();
  try {
    c10::InferenceMode guard;
    for (size_t first = 0; first < items.size();) {
      const size_t end = PrefillChunkEnd(items, first, prefill_chunk_tokens_);
      EncodeIntoCache(items, first, end);
      first = end;
    }
    // Recomputed rows: one teacher-forced pass per run of consecutive items with histories.
    std::vector<std::vector<int64_t>> run;
    int64_t run_first = before, row = before;
    for (const PrefillItem& item : items) {
      if (item.histories == nullptr) {
        if (!run.empty()) model_->RecomputeHistory(run_first, run, &cache_);
        run.clear();
        run_first = row + item.copies;
      } else {
        run.insert(run.end(), item.histories->begin(), item.histories->end());
      }
      row += item.copies;
    }
    if (!run.empty()) model_->RecomputeHistory(run_first, run, &cache_);
    return OkStatus();
  } catch (const c10::Error& e) {
    TruncateTo(before);
    return FromTorchError(e, "encoder pass");
  }
}

namespace {

// Rows of `selections` of one kind, as a device index tensor (undefined when there are none).
at::Tensor RowsOfKind(const std::vector<RowSelection>& selections, SelectKind kind, const at::Device& device) {
  std::vector<int64_t> rows;
  for (size_t r = 0; r < selections.size(); ++r) {
    if (selections[r].kind == kind) rows.push_back(static_cast<int64_t>(r));
  }
  return rows.empty() ? at::Tensor() : ToDevice(rows, device);
}

// Greedy rows take the argmax; sampled rows are warped and drawn together (sampler.h).
at::Tensor ChooseTokens(const at::Tensor& logits, const std::vector<RowSelection>& selections) {
  const at::Tensor argmax = at::argmax(logits, -1);
  const at::Tensor rows = RowsOfKind(selections, SelectKind::kSample, logits.device());
  if (!rows.defined()) return argmax;
  std::vector<SamplingParams> params;
  std::vector<double> uniforms;
  for (const RowSelection& sel : selections) {
    if (sel.kind != SelectKind::kSample) continue;
    SamplingParams p;
    p.temperature = sel.temperature;
    p.top_k = sel.top_k;
    p.top_p = sel.top_p;
    params.push_back(p);
    uniforms.push_back(sel.uniform);
  }
  const at::Tensor drawn = SampleTokens(logits.index_select(0, rows),
                                        MakeSamplingBatch(params, logits.size(1), logits.device()),
                                        ToDevice(uniforms, logits.device()));
  return argmax.index_copy(0, rows, drawn);
}

// Hugging Face's RepetitionPenaltyLogitsProcessor on `scores` [m, V], whose row j is the step's
// row rows[j]: each distinct token of that row's history gets score / p if positive, score * p
// if not. Rows without a penalty are left alone.
void PenalizeRepeats(at::Tensor& scores, const std::vector<int64_t>& rows, const std::vector<RowSelection>& selections) {
  std::vector<int64_t> at_rows, at_tokens;
  std::vector<float> penalties;
  for (size_t j = 0; j < rows.size(); ++j) {
    const RowSelection& sel = selections[rows[j]];
    if (sel.repetition_penalty == 1.0 || sel.history == nullptr) continue;
    for (int64_t token : std::set<int64_t>(sel.history->begin(), sel.history->end())) {
      if (token < 0 || token >= scores.size(1)) continue;
      at_rows.push_back(static_cast<int64_t>(j));
      at_tokens.push_back(token);
      penalties.push_back(static_cast<float>(sel.repetition_penalty));
    }
  }
  if (at_rows.empty()) return;
  const at::Tensor r = ToDevice(at_rows, scores.device());
  const at::Tensor t = ToDevice(at_tokens, scores.device());
  const at::Tensor p = at::tensor(penalties).to(scores.device(), scores.scalar_type());
  const at::Tensor s = scores.index({r, t});
  scores.index_put_({r, t}, at::where(s < 0, s * p, s / p));
}

bool AnyPenalty(const std::vector<RowSelection>& selections, SelectKind kind) {
  for (const RowSelection& sel : selections) {
    if (sel.kind == kind && sel.repetition_penalty != 1.0) return true;
  }
  return false;
}

}  // namespace

std::vector<double> T5Runner::ReadBack(const at::Tensor& t) {
  ++device_to_host_transfers_;
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

Status T5Runner::Step(const std::vector<int64_t>& tokens, const std::vector<RowSelection>& selections,
                      std::vector<RowOutput>* outputs) {
  try {
    c10::InferenceMode guard;
    const int64_t n = static_cast<int64_t>(tokens.size());
    at::Tensor logits = model_->DecodeStep(tokens, &cache_).to(at::kFloat);  // [n, V]
    const at::Tensor lse = at::logsumexp(logits, -1);                         // [n]
    // min_new_tokens: eos is masked after the normalizer, as HF's processor runs after
    // log_softmax in beam search.
    std::vector<int64_t> suppress;
    for (int64_t r = 0; r < n; ++r) {
      if (selections[r].suppress_eos) suppress.push_back(r);
    }
    if (!suppress.empty()) {
      const at::Tensor rows = ToDevice(suppress, logits.device());
      logits.index_put_({rows, at::full({}, config().eos_token_id, rows.options())},
                        at::full({}, -std::numeric_limits<float>::infinity(), logits.options()));
    }
    // Everything the host needs, in one tensor and one transfer: each row's chosen token and
    // its log-probability, then every beam row's candidates (token, log-probability).
    // Greedy and sampled rows choose from penalized scores; reported log-probabilities stay
    // those of the raw logits.
    at::Tensor scores = logits;
    if (AnyPenalty(selections, SelectKind::kArgmax) || AnyPenalty(selections, SelectKind::kSample)) {
      scores = logits.clone();
      std::vector<int64_t> all(n);
      for (int64_t r = 0; r < n; ++r) all[r] = selections[r].kind == SelectKind::kTopCandidates ? -1 : r;
      all.erase(std::remove(all.begin(), all.end(), -1), all.end());
      at::Tensor rows = ToDevice(all, logits.device());
      at::Tensor sub = scores.index_select(0, rows);
      PenalizeRepeats(sub, all, selections);
      scores.index_copy_(0, rows, sub);
    }
    const at::Tensor chosen = ChooseTokens(scores, selections);
    std::vector<at::Tensor> parts = {
        at::stack({chosen.to(at::kDouble), (logits.gather(1, chosen.unsqueeze(1)).squeeze(1) - lse).to(at::kDouble)}, 1)
            .reshape(-1)};
    const at::Tensor beam_rows = RowsOfKind(selections, SelectKind::kTopCandidates, logits.device());
    int64_t width = 0;
    for (const RowSelection& sel : selections) {
      if (sel.kind == SelectKind::kTopCandidates) width = std::max<int64_t>(width, sel.candidates);
    }
    width = std::min<int64_t>(width, logits.size(1));
    if (beam_rows.defined()) {
      at::Tensor lp = logits.index_select(0, beam_rows) - lse.index_select(0, beam_rows).unsqueeze(1);
      if (AnyPenalty(selections, SelectKind::kTopCandidates)) {  // HF: on the log-probabilities
        std::vector<int64_t> rows;
        for (int64_t r = 0; r < n; ++r) {
          if (selections[r].kind == SelectKind::kTopCandidates) rows.push_back(r);
        }
        PenalizeRepeats(lp, rows, selections);
      }
      auto [values, indices] = at::topk(lp, width, -1, /*largest=*/true, /*sorted=*/true);
      parts.push_back(at::stack({indices.to(at::kDouble), values.to(at::kDouble)}, 2).reshape(-1));
    }
    // Then the rows that want their top-n alternatives, n up to the widest request.
    std::vector<int64_t> top_rows;
    int64_t top_width = 0;
    for (int64_t r = 0; r < n; ++r) {
      if (selections[r].kind == SelectKind::kTopCandidates || selections[r].top_logprobs <= 0) continue;
      top_rows.push_back(r);
      top_width = std::max<int64_t>(top_width, selections[r].top_logprobs);
    }
    top_width = std::min<int64_t>(top_width, logits.size(1));
    if (!top_rows.empty()) {
      const at::Tensor rows = ToDevice(top_rows, logits.device());
      const at::Tensor lp = logits.index_select(0, rows) - lse.index_select(0, rows).unsqueeze(1);
      auto [values, indices] = at::topk(lp, top_width, -1, /*largest=*/true, /*sorted=*/true);
      parts.push_back(at::stack({indices.to(at::kDouble), values.to(at::kDouble)}, 2).reshape(-1));
    }
    const std::vector<double> host = ReadBack(at::cat(parts));
    outputs->assign(n, RowOutput());
    size_t beam = 0;
    const int64_t beams = beam_rows.defined() ? beam_rows.numel() : 0;
    const double* tops = host.data() + 2 * n + 2 * width * beams;
    size_t top = 0;
    for (int64_t r = 0; r < n; ++r) {
      RowOutput& o = (*outputs)[r];
      if (selections[r].kind != SelectKind::kTopCandidates) {
        o.token = static_cast<int64_t>(host[2 * r]);
        o.logprob = static_cast<float>(host[2 * r + 1]);
        if (top < top_rows.size() && top_rows[top] == r) {
          const double* t = tops + 2 * top_width * static_cast<int64_t>(top++);
          for (int64_t i = 0; i < std::min<int64_t>(selections[r].top_logprobs, top_width); ++i) {
            o.top.push_back({static_cast<int64_t>(t[2 * i]), static_cast<float>(t[2 * i + 1])});
          }
        }
        continue;
      }
      const double* c = host.data() + 2 * n + 2 * width * static_cast<int64_t>(beam++);
      for (int64_t i = 0; i < std::min<int64_t>(selections[r].candidates, width); ++i) {
        o.candidates.push_back({static_cast<int64_t>(c[2 * i]), static_cast<float>(c[2 * i + 1])});
      }
    }
    return OkStatus();
  } catch (const c10::Error& e) {
    return FromTorchError(e, "decoder step");
  }
}

void T5Runner::TruncateTo(int64_t rows) {
  if (cache_.size() <= rows) return;
  std::vector<int64_t> keep(rows);
  for (int64_t i = 0; i < rows; ++i) keep[i] = i;
  try {
    cache_.Compact(keep);
  } catch (const c10::Error&) {
    cache_.Clear();  // the engine resets after any failed operation anyway
  }
}

Status T5Runner::Compact(const std::vector<int64_t>& keep) {
  try {
    cache_.Compact(keep);
    return OkStatus();
  } catch (const c10::Error& e) {
    return FromTorchError(e, "row compaction");
  }
}

Status T5Runner::CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) {
  try {
    cache_.CopyHistory(dst, src);
    return OkStatus();
  } catch (const c10::Error& e) {
    return FromTorchError(e, "beam reorder");
  }
}

Status T5Runner::Permute(const std::vector<int64_t>& order) {
  try {
    cache_.Permute(order);
    return OkStatus();
  } catch (const c10::Error& e) {
    return FromTorchError(e, "row reorder");
  }
}

Status T5Runner::Reset() {
  try {
    cache_.Clear();  // keeps the memory: no second cache alongside the first
    return OkStatus();
  } catch (const c10::Error& e) {
    return FromTorchError(e, "cache reset");
  }
}

StatusOr<std::vector<ScoreOutput>> T5Runner::Score(const std::vector<ScoreItem>& items) {
  std::vector<ScoreOutput> out(items.size());
  if (items.empty()) return out;
  try {
    c10::InferenceMode guard;
    std::vector<std::pair<const std::vector<int64_t>*, const Prompt*>> rows;
    std::vector<int64_t> item_of_target;
    int64_t t_max = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      rows.push_back({items[i].input_ids, items[i].prompt});
      for (const auto& target : *items[i].targets) {
        item_of_target.push_back(static_cast<int64_t>(i));
        t_max = std::max<int64_t>(t_max, target.size());
      }
    }
    EncoderBatch batch = Embed(rows);
    at::Tensor enc = model_->Encode(batch);
    const int64_t c = static_cast<int64_t>(item_of_target.size());
    // Teacher forcing: decoder input = [start] + target[:-1], labels = target.
    std::vector<int64_t> dec_in(c * t_max, 0), labels;
    std::vector<uint8_t> dec_mask(c * t_max, 0);
    std::vector<int64_t> positions;  // flat indices of real target positions
    int64_t row = 0;
    for (const ScoreItem& item : items) {
      for (const auto& target : *item.targets) {
        const int64_t len = static_cast<int64_t>(target.size());
        for (int64_t j = 0; j < len; ++j) {
          dec_in[row * t_max + j] = j == 0 ? config().decoder_start_token_id : target[j - 1];
          dec_mask[row * t_max + j] = 1;
          positions.push_back(row * t_max + j);
          labels.push_back(target[j]);
        }
        ++row;
      }
    }
    const c10::Device device = model_->tensor_options().device();
    const auto long_opt = at::TensorOptions().dtype(at::kLong);
    at::Tensor idx = at::tensor(item_of_target, long_opt).to(device);
    at::Tensor in = at::tensor(dec_in, long_opt).view({c, t_max});
    at::Tensor mask = at::tensor(dec_mask, at::TensorOptions().dtype(at::kByte)).view({c, t_max}).to(at::kBool);
    at::Tensor hidden = model_->DecodeTeacherForcedHidden(enc.index_select(0, idx), batch.mask.index_select(0, idx),
                                                          in, mask);  // [C, T, d]
    at::Tensor real = hidden.reshape({c * t_max, -1}).index_select(0, at::tensor(positions, long_opt).to(device));
    std::vector<float> flat = ToFloats(model_->LabelLogProbs(real, at::tensor(labels, long_opt), kScoreLogitRows));
    size_t k = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      for (const auto& target : *items[i].targets) {
        std::vector<float> per_token(flat.begin() + static_cast<int64_t>(k), flat.begin() + static_cast<int64_t>(k + target.size()));
        k += target.size();
        double total = 0;
        for (float v : per_token) total += v;
        out[i].totals.push_back(total);
        out[i].token_logprobs.push_back(std::move(per_token));
      }
    }
    return out;
  } catch (const c10::Error& e) {
    return FromTorchError(e, "scoring pass");
  }
}

const at::Tensor& T5Runner::NormalizedEmbedding() {
  if (!normalized_embedding_.defined()) {
    at::Tensor e = model_->weights().embedding.to(at::kFloat);
    normalized_embedding_ = (e / e.norm(2, -1, true).clamp_min(1e-12)).t().contiguous();  // [d, V]
  }
  return normalized_embedding_;
}

StatusOr<ExplainResult> T5Runner::Explain(const Prompt& prompt, int top_k) {
  try {
    c10::InferenceMode guard;
    at::Tensor p = PromptTensor(&prompt).to(at::kFloat);
    at::Tensor sim = at::matmul(p / p.norm(2, -1, true).clamp_min(1e-12), NormalizedEmbedding());  // [rows, V]
    const int64_t k = std::min<int64_t>(top_k, sim.size(1));
    auto [values, indices] = at::topk(sim, k, -1, true, true);
    std::vector<float> vals = ToFloats(values);
    std::vector<int64_t> ids = ToLongs(indices);
    ExplainResult result;
    result.positions.resize(prompt.rows());
    for (int64_t r = 0; r < prompt.rows(); ++r) {
      for (int64_t i = 0; i < k; ++i) {
        result.positions[r].push_back({ids[r * k + i], vals[r * k + i]});
      }
    }
    return result;
  } catch (const c10::Error& e) {
    return FromTorchError(e, "explain");
  }
}

}  // namespace softserve::core
