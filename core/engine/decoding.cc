#include "core/engine/decoding.h"

#include <algorithm>
#include <cmath>

namespace softserve::core {
namespace {

// Greedy and sampling: one row, one token per step.
class SingleRowDecoder : public SequenceDecoder {
 public:
  SingleRowDecoder(const DecodingParams& p, const SpecialTokens& s)
      : params_(p), special_(s), rng_(p.seed), last_(s.decoder_start), fed_{s.decoder_start} {}

  int num_rows() const override { return 1; }
  void Inputs(std::vector<int64_t>* tokens) const override { tokens->push_back(last_); }

  void Histories(std::vector<std::vector<int64_t>>* out) const override {
    std::vector<int64_t> fed;
    if (!result_.output_ids.empty()) {
      fed.push_back(special_.decoder_start);
      fed.insert(fed.end(), result_.output_ids.begin(), result_.output_ids.end() - 1);
    }
    out->push_back(std::move(fed));
  }

  void Selections(std::vector<RowSelection>* out) override {
    RowSelection sel;
    sel.suppress_eos = static_cast<int>(result_.output_ids.size()) < params_.min_new_tokens;
    if (params_.mode == DecodingMode::kSample) {
      sel.kind = SelectKind::kSample;
      sel.temperature = params_.temperature;
      sel.top_k = params_.top_k;
      sel.top_p = params_.top_p;
      // 53 random bits: the same uniform sequence for a seed on every platform.
      sel.uniform = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    }
    sel.top_logprobs = params_.top_logprobs;
    sel.repetition_penalty = params_.repetition_penalty;
    sel.history = &fed_;
    out->push_back(sel);
  }

  void Advance(const RowOutput* outputs, std::vector<int>* reorder,
               std::vector<TokenChoice>* emitted) override {
    reorder->assign(1, 0);
    const RowOutput& o = outputs[0];
    last_ = o.token;
    fed_.push_back(o.token);
    result_.output_ids.push_back(o.token);
    if (params_.return_logprobs) result_.token_logprobs.push_back(o.logprob);
    if (params_.top_logprobs > 0) result_.top_logprobs.push_back(o.top);
    result_.score += o.logprob;
    emitted->push_back({o.token, o.logprob, o.top});
    if (o.token == special_.eos) {
      result_.finish_reason = FinishReason::kEos;
      done_ = true;
    } else if (static_cast<int>(result_.output_ids.size()) >= params_.max_new_tokens) {
      result_.finish_reason = FinishReason::kMaxTokens;
      done_ = true;
    }
  }

  void Stop(FinishReason reason) override {
    if (done_) return;
    result_.finish_reason = reason;
    done_ = true;
  }
  bool done() const override { return done_; }
  GenerationResult Result() const override { return result_; }

 private:
  DecodingParams params_;
  SpecialTokens special_;
  std::mt19937_64 rng_;
  int64_t last_;
  std::vector<int64_t> fed_;  // the decoder input so far: the start token, then every output
  bool done_ = false;
  GenerationResult result_;
};

// Hugging Face beam search for one input (BeamSearchScorer with batch size 1).
class BeamDecoder : public SequenceDecoder {
 public:
  BeamDecoder(const DecodingParams& p, const SpecialTokens& s)
      : params_(p), special_(s), k_(p.num_beams), max_length_(1 + p.max_new_tokens) {
    beams_.assign(k_, Beam{{s.decoder_start}, {}, 0.0});
    // Only the first beam is live at the start; the others are identical copies that must not
    // produce duplicate candidates.
    for (int b = 1; b < k_; ++b) beams_[b].score = -1e9;
  }

  int num_rows() const override { return k_; }

  void Inputs(std::vector<int64_t>* tokens) const override {
    for (const Beam& b : beams_) tokens->push_back(b.tokens.back());
  }

  void Histories(std::vector<std::vector<int64_t>>* out) const override {
    for (const Beam& b : beams_) out->emplace_back(b.tokens.begin(), b.tokens.end() - 1);
  }

  void Selections(std::vector<RowSelection>* out) override {
    RowSelection sel;
    sel.kind = SelectKind::kTopCandidates;
    sel.candidates = 2 * k_;
    sel.suppress_eos = static_cast<int>(beams_[0].tokens.size()) - 1 < params_.min_new_tokens;
    sel.repetition_penalty = params_.repetition_penalty;
    for (int b = 0; b < k_; ++b) {
      sel.history = &beams_[b].tokens;
      out->push_back(sel);
    }
  }

  void Advance(const RowOutput* outputs, std::vector<int>* reorder,
               std::vector<TokenChoice>* emitted) override {
    struct Candidate {
      double score;
      int64_t token;
      int beam;
      float logprob;
    };
    std::vector<Candidate> all;
    for (int b = 0; b < k_; ++b) {
      for (const TokenLogprob& c : outputs[b].candidates) {
        all.push_back({beams_[b].score + c.logprob, c.token, b, c.logprob});
      }
    }
    const size_t top = std::min<size_t>(all.size(), 2 * static_cast<size_t>(k_));
    // Ties resolve to the lower flattened index (beam-major), as torch.topk does in practice.
    std::stable_sort(all.begin(), all.end(),
                     [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    all.resize(top);

    const int cur_len = static_cast<int>(beams_[0].tokens.size());
    std::vector<Beam> next;
    for (size_t rank = 0; rank < all.size() && static_cast<int>(next.size()) < k_; ++rank) {
      const Candidate& c = all[rank];
      const Beam& from = beams_[c.beam];
      if (c.token == special_.eos) {
        if (static_cast<int>(rank) >= k_) continue;
        std::vector<float> lps = from.logprobs;
        lps.push_back(c.logprob);
        AddHypothesis(from.tokens, std::move(lps), c.score, /*ended_with_eos=*/true);
        continue;
      }
      Beam nb{from.tokens, from.logprobs, c.score};
      nb.tokens.push_back(c.token);
      nb.logprobs.push_back(c.logprob);
      nb.parent = c.beam;
      next.push_back(std::move(nb));
    }
    const double best = all.empty() ? -1e9 : all[0].score;
    search_done_ = search_done_ || IsDone(best, cur_len + 1);

    reorder->resize(k_);
    for (int i = 0; i < k_; ++i) (*reorder)[i] = next[i].parent;
    beams_ = std::move(next);
    if (search_done_ || static_cast<int>(beams_[0].tokens.size()) >= max_length_) Finalize();
  }

  void Stop(FinishReason reason) override {
    if (finished_) return;
    Finalize();
    if (result_.finish_reason != FinishReason::kEos) result_.finish_reason = reason;
  }

  bool done() const override { return finished_; }

  GenerationResult Result() const override { return result_; }

 private:
  struct Beam {
    std::vector<int64_t> tokens;  // starts with the decoder start token
    std::vector<float> logprobs;  // one per token after the start
    double score = 0;
    int parent = 0;
  };
  struct Hypothesis {
    double score;
    std::vector<int64_t> tokens;
    std::vector<float> logprobs;
    bool ended_with_eos;
  };

  // BeamHypotheses.add: keep the best k, tracking the worst kept score.
  void AddHypothesis(const std::vector<int64_t>& tokens, std::vector<float> logprobs,
                     double sum_logprobs, bool ended_with_eos) {
    const double score =
        sum_logprobs / std::pow(static_cast<double>(tokens.size()), params_.length_penalty);
    if (static_cast<int>(hyps_.size()) < k_ || score > worst_score_) {
      hyps_.push_back({score, tokens, std::move(logprobs), ended_with_eos});
      if (static_cast<int>(hyps_.size()) > k_) {
        // Remove the worst; the new worst is the second lowest.
        std::vector<std::pair<double, size_t>> order;
        for (size_t i = 0; i < hyps_.size(); ++i) order.push_back({hyps_[i].score, i});
        std::sort(order.begin(), order.end());
        hyps_.erase(hyps_.begin() + static_cast<long>(order[0].second));
        worst_score_ = order[1].first;
      } else {
        worst_score_ = std::min(score, worst_score_);
      }
    }
  }

  bool IsDone(double best_sum_logprobs, int cur_len) const {
    if (static_cast<int>(hyps_.size()) < k_) return false;
    switch (params_.early_stopping) {
      case EarlyStopping::kTrue:
        return true;
      case EarlyStopping::kHeuristic:
        return worst_score_ >= best_sum_logprobs / std::pow(cur_len, params_.length_penalty);
      case EarlyStopping::kNever: {
        const double len = params_.length_penalty > 0 ? max_length_ : cur_len;
        return worst_score_ >= best_sum_logprobs / std::pow(len, params_.length_penalty);
      }
    }
    return false;
  }

  void Finalize() {
    if (!search_done_) {
      for (const Beam& b : beams_) AddHypothesis(b.tokens, b.logprobs, b.score, false);
    }
    // sorted(..., key=score).pop(): the highest score, the later one among equals.
    size_t best = 0;
    for (size_t i = 1; i < hyps_.size(); ++i) {
      if (hyps_[i].score >= hyps_[best].score) best = i;
    }
    const Hypothesis& h = hyps_[best];
    result_.output_ids.assign(h.tokens.begin() + 1, h.tokens.end());
    std::vector<float> lps = h.logprobs;
    if (h.ended_with_eos) {
      result_.output_ids.push_back(special_.eos);
      result_.finish_reason = FinishReason::kEos;
    } else {
      result_.finish_reason = FinishReason::kMaxTokens;
    }
    lps.resize(result_.output_ids.size(), 0.0f);
    if (params_.return_logprobs) result_.token_logprobs = std::move(lps);
    result_.score = h.score;
    finished_ = true;
  }

  DecodingParams params_;
  SpecialTokens special_;
  int k_;
  int max_length_;
  std::vector<Beam> beams_;
  std::vector<Hypothesis> hyps_;
  double worst_score_ = 1e9;
  bool search_done_ = false;
  bool finished_ = false;
  GenerationResult result_;
};

}  // namespace

std::unique_ptr<SequenceDecoder> SequenceDecoder::Create(const DecodingParams& params,
                                                         const SpecialTokens& special) {
  if (params.mode == DecodingMode::kBeam) return std::make_unique<BeamDecoder>(params, special);
  return std::make_unique<SingleRowDecoder>(params, special);
}

}  // namespace softserve::core
