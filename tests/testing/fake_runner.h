// A deterministic ModelRunner without weights, for testing the engine's scheduling logic:
// each row's next token is a hash of its input, prompt and the tokens it has consumed; a row
// emits eos after `eos_after` consumed tokens when the input's first id is odd. Rows
// recomputed from histories (preemption, recovery) continue exactly where they were, as the
// real runner's do. Steps can be gated (the engine thread waits until the test releases them)
// and faults injected: an operation fails (or throws) when it touches a "poisoned" row, i.e. a
// row whose input's first id is in `poison_first_ids`.
#ifndef SOFTSERVE_TESTS_TESTING_FAKE_RUNNER_H_
#define SOFTSERVE_TESTS_TESTING_FAKE_RUNNER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <stdexcept>
#include <vector>

#include "core/engine/model_runner.h"

namespace softserve::testing {

class FakeRunner : public core::ModelRunner {
 public:
  enum class Op { kNone, kPrefill, kStep, kCompact, kCopyHistory, kScore, kPermute };

  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool gated = false;
    int64_t released_steps = 0;  // steps allowed while gated
    int64_t steps = 0;
    int64_t rows = 0;
    int64_t max_rows_seen = 0;
    std::set<uint64_t> fail_prefill_first_ids;  // a prefill containing such an input fails
    bool fail_next_step = false;
    std::vector<int64_t> rows_per_step;  // rows stepped (a priority step steps a prefix)
    // Fault injection on poisoned rows.
    std::set<int64_t> poison_first_ids;
    Op poison_op = Op::kNone;
    bool poison_throws = false;  // throw std::runtime_error instead of returning Internal
    int fail_resets = 0;         // the next N Resets fail
    int64_t resets = 0;
    int64_t recomputed_rows = 0;  // rows prefilled from histories
    std::chrono::microseconds step_time{0};  // each step takes at least this long
  };

  explicit FakeRunner(std::shared_ptr<Shared> shared, int64_t vocab = 50, int eos_after = 4)
      : shared_(std::move(shared)), eos_after_(eos_after) {
    config_.vocab_size = vocab;
    config_.d_model = 8;
  }

  const core::T5Config& config() const override { return config_; }
  std::string Describe() const override { return "fake"; }
  int64_t num_rows() const override { return static_cast<int64_t>(rows_.size()); }

  core::Status Prefill(const std::vector<core::PrefillItem>& items) override {
    for (const auto& item : items) {
      const int64_t first = item.input_ids->empty() ? -1 : (*item.input_ids)[0];
      if (first >= 0 && Locked([&] { return shared_->fail_prefill_first_ids.count(first) > 0; })) {
        return core::InternalError("injected prefill failure");
      }
      if (Poisoned(Op::kPrefill, first)) return Fault("prefill");
    }
    for (const auto& item : items) {
      uint64_t h = 1469598103934665603ull;
      for (int64_t id : *item.input_ids) h = (h ^ static_cast<uint64_t>(id)) * 1099511628211ull;
      if (item.prompt != nullptr) h ^= item.prompt->uid() * 0x9E3779B97F4A7C15ull;
      const int64_t first = item.input_ids->empty() ? -1 : (*item.input_ids)[0];
      const bool stops = first >= 0 && first % 2 == 1;
      for (int c = 0; c < item.copies; ++c) {
        Row row{h, 0, stops, first};
        if (item.histories != nullptr) {
          for (int64_t token : (*item.histories)[c]) Feed(&row, token);
          Locked([&] { return ++shared_->recomputed_rows; });
        }
        rows_.push_back(row);
      }
    }
    Publish();
    return core::OkStatus();
  }

  core::Status Step(const std::vector<int64_t>& tokens, const std::vector<core::RowSelection>& sel,
                    std::vector<core::RowOutput>* out) override {
    {
      std::unique_lock<std::mutex> lock(shared_->mu);
      shared_->cv.wait(lock, [&] { return !shared_->gated || shared_->released_steps > 0; });
      if (shared_->gated) --shared_->released_steps;
      ++shared_->steps;
      shared_->rows_per_step.push_back(static_cast<int64_t>(tokens.size()));
      if (shared_->fail_next_step) {
        shared_->fail_next_step = false;
        shared_->cv.notify_all();
        return core::InternalError("injected step failure");
      }
    }
    const std::chrono::microseconds step_time = Locked([&] { return shared_->step_time; });
    if (step_time.count() > 0) std::this_thread::sleep_for(step_time);
    for (size_t r = 0; r < tokens.size(); ++r) {
      if (Poisoned(Op::kStep, rows_[r].first_id)) return Fault("step");
    }
    out->assign(tokens.size(), core::RowOutput());
    for (size_t r = 0; r < tokens.size(); ++r) {
      Row& row = rows_[r];
      Feed(&row, tokens[r]);
      int64_t best = 2 + static_cast<int64_t>(row.state % (config_.vocab_size - 2));
      if (row.stops && row.consumed >= eos_after_ && !sel[r].suppress_eos) best = config_.eos_token_id;
      core::RowOutput& o = (*out)[r];
      if (sel[r].kind == core::SelectKind::kTopCandidates) {
        for (int c = 0; c < sel[r].candidates; ++c) {
          const int64_t tok = c == 0 ? best : 2 + (best + c) % (config_.vocab_size - 2);
          o.candidates.push_back({tok, -0.5f * static_cast<float>(c + 1)});
        }
      } else if (sel[r].kind == core::SelectKind::kSample) {
        o.token = 2 + static_cast<int64_t>(sel[r].uniform * (config_.vocab_size - 2));
        o.logprob = -1.0f;
      } else {
        o.token = best;
        o.logprob = -0.25f;
      }
    }
    Publish();
    return core::OkStatus();
  }

  core::Status Compact(const std::vector<int64_t>& keep) override {
    std::set<int64_t> kept(keep.begin(), keep.end());
    for (size_t r = 0; r < rows_.size(); ++r) {
      const bool touched = kept.count(static_cast<int64_t>(r)) == 0 ||
                           (r < keep.size() && keep[r] != static_cast<int64_t>(r));
      if (touched && Poisoned(Op::kCompact, rows_[r].first_id)) return Fault("compact");
    }
    std::vector<Row> rows;
    for (int64_t k : keep) rows.push_back(rows_[k]);
    rows_ = std::move(rows);
    Publish();
    return core::OkStatus();
  }
  core::Status CopyHistory(const std::vector<int64_t>& dst, const std::vector<int64_t>& src) override {
    for (size_t i = 0; i < dst.size(); ++i) {
      if (Poisoned(Op::kCopyHistory, rows_[dst[i]].first_id)) return Fault("copy history");
    }
    std::vector<Row> copy = rows_;
    for (size_t i = 0; i < dst.size(); ++i) rows_[dst[i]] = copy[src[i]];
    return core::OkStatus();
  }
  core::Status Permute(const std::vector<int64_t>& order) override {
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] != static_cast<int64_t>(i) && Poisoned(Op::kPermute, rows_[i].first_id)) return Fault("permute");
    }
    std::vector<Row> rows;
    for (int64_t k : order) rows.push_back(rows_[k]);
    rows_ = std::move(rows);
    return core::OkStatus();
  }
  core::Status Reset() override {
    rows_.clear();
    Publish();
    std::lock_guard<std::mutex> lock(shared_->mu);
    ++shared_->resets;
    if (shared_->fail_resets > 0) {
      --shared_->fail_resets;
      return core::InternalError("injected reset failure");
    }
    return core::OkStatus();
  }
  core::StatusOr<std::vector<core::ScoreOutput>> Score(const std::vector<core::ScoreItem>& items) override {
    std::vector<core::ScoreOutput> out;
    for (const auto& item : items) {
      if (Poisoned(Op::kScore, item.input_ids->empty() ? -1 : (*item.input_ids)[0])) return Fault("score");
      core::ScoreOutput o;
      for (const auto& t : *item.targets) {
        o.totals.push_back(-static_cast<double>(t.size()) - (item.prompt ? 0.5 : 0.0));
        o.token_logprobs.push_back(std::vector<float>(t.size(), -1.0f));
      }
      out.push_back(std::move(o));
    }
    return out;
  }
  core::StatusOr<core::ExplainResult> Explain(const core::Prompt& prompt, int top_k) override {
    core::ExplainResult r;
    r.positions.assign(prompt.rows(), std::vector<core::TokenSimilarity>(top_k));
    return r;
  }

 private:
  struct Row {
    uint64_t state;
    int consumed;
    bool stops;
    int64_t first_id;
  };
  static void Feed(Row* row, int64_t token) {
    row->state = (row->state ^ static_cast<uint64_t>(token)) * 1099511628211ull;
    ++row->consumed;
  }
  template <typename F>
  auto Locked(F f) -> decltype(f()) {
    std::lock_guard<std::mutex> lock(shared_->mu);
    return f();
  }
  bool Poisoned(Op op, int64_t first_id) {
    return Locked([&] { return shared_->poison_op == op && shared_->poison_first_ids.count(first_id) > 0; });
  }
  core::Status Fault(const char* what) {
    if (Locked([&] { return shared_->poison_throws; })) {
      throw std::runtime_error(std::string("injected ") + what + " exception");
    }
    return core::InternalError(std::string("injected ") + what + " failure");
  }
  void Publish() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->rows = static_cast<int64_t>(rows_.size());
    shared_->max_rows_seen = std::max(shared_->max_rows_seen, shared_->rows);
    shared_->cv.notify_all();
  }

  std::shared_ptr<Shared> shared_;
  core::T5Config config_;
  int eos_after_;
  std::vector<Row> rows_;
};

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_FAKE_RUNNER_H_
