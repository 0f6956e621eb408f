// Engine: the work of one loop iteration — admitting jobs (one batched encoder pass for all
// new rows, one batched scoring pass), the decode step over every running row, and retiring
// finished rows so that waiting work can take their place.
#include <set>

#include "core/engine/engine.h"
#include "core/engine/engine_job.h"

namespace softserve::core {
namespace {

ScoreResult ToScoreResult(ScoreOutput out) {
  ScoreResult r;
  r.total_logprobs = std::move(out.totals);
  r.token_logprobs = std::move(out.token_logprobs);
  for (size_t t = 0; t < r.total_logprobs.size(); ++t) {
    if (r.best < 0 || r.total_logprobs[t] > r.total_logprobs[r.best]) r.best = static_cast<int>(t);
  }
  return r;
}

}  // namespace

void Engine::Admit(std::vector<std::unique_ptr<Job>> jobs, StepStats* stats) {
  const TimePoint now = Clock::now();
  std::vector<std::unique_ptr<Job>> one_shot;
  std::vector<Job*> decoding, scoring;
  for (auto& job : jobs) {
    job->admitted = now;
    switch (job->kind) {
      case JobKind::kExplain: {
        auto result = runner_->Explain(*job->explain.prompt, job->explain.top_k);
        if (result.ok()) job->explain_done(std::move(result).value());
        else job->Fail(result.status());
        break;
      }
      case JobKind::kScore:
      case JobKind::kEnsembleScore:
        scoring.push_back(job.get());
        one_shot.push_back(std::move(job));
        break;
      case JobKind::kGenerate:
      case JobKind::kEnsembleGenerate:
        decoding.push_back(job.get());
        running_[job->id] = std::move(job);
        break;
    }
  }
  RunScoring(scoring);
  AdmitDecoding(decoding, stats);
}

void Engine::RunScoring(std::vector<Job*> jobs) {
  if (jobs.empty()) return;
  std::vector<ScoreItem> items;
  for (Job* job : jobs) {
    if (job->kind == JobKind::kScore) {
      items.push_back({&job->score.common.input_ids, job->score.prompt.get(), &job->score.targets});
    } else {
      for (const PromptPtr& p : job->ensemble.prompts) {
        items.push_back({&job->ensemble.common.input_ids, p.get(), &job->ensemble.targets});
      }
    }
  }
  auto outputs = runner_->Score(items);
  if (!outputs.ok()) {
    // Isolate the failure: rerun each job alone so only the failing one gets the error.
    if (jobs.size() > 1) {
      for (Job* job : jobs) RunScoring({job});
    } else {
      jobs[0]->Fail(outputs.status());
    }
    return;
  }
  size_t next = 0;
  for (Job* job : jobs) {
    if (job->kind == JobKind::kScore) {
      job->score_done(ToScoreResult(std::move((*outputs)[next++])));
      continue;
    }
    EnsembleResult result;
    for (size_t k = 0; k < job->ensemble.prompts.size(); ++k) {
      result.member_scores.push_back(ToScoreResult(std::move((*outputs)[next++])));
    }
    SumEnsembleScores(&result);
    job->ensemble_done(std::move(result));
  }
}

void Engine::AdmitDecoding(std::vector<Job*> jobs, StepStats* stats) {
  if (jobs.empty()) return;
  const SpecialTokens special{config_.eos_token_id, config_.decoder_start_token_id};
  std::vector<PrefillItem> items;
  for (Job* job : jobs) {
    const bool ensemble = job->kind == JobKind::kEnsembleGenerate;
    const RequestCommon& common = job->common();
    const DecodingParams& params = ensemble ? job->ensemble.params : job->generation.params;
    const size_t members = ensemble ? job->ensemble.prompts.size() : 1;
    job->member_results.resize(members);
    for (size_t m = 0; m < members; ++m) {
      auto seq = std::make_unique<Sequence>();
      seq->job = job;
      seq->member = static_cast<int>(m);
      seq->prompt = ensemble ? job->ensemble.prompts[m] : job->generation.prompt;
      seq->decoder = SequenceDecoder::Create(params, special);
      items.push_back({&common.input_ids, seq->prompt.get(), seq->decoder->num_rows()});
      job->sequences.push_back(std::move(seq));
      ++job->unfinished;
    }
  }
  Status s = runner_->Prefill(items);
  if (!s.ok()) {
    if (jobs.size() > 1) {
      // Isolate the failure: admit each job on its own.
      for (Job* job : jobs) {
        job->sequences.clear();
        job->unfinished = 0;
        AdmitDecoding({job}, stats);
      }
      return;
    }
    Job* job = jobs[0];
    job->sequences.clear();
    auto node = running_.extract(job->id);
    job->Fail(s);
    return;
  }
  for (Job* job : jobs) {
    for (auto& seq : job->sequences) {
      for (int r = 0; r < seq->decoder->num_rows(); ++r) {
        seq->slots.push_back(static_cast<int64_t>(slots_.size()));
        slots_.push_back({seq.get(), r});
      }
      stats->prefill_rows += seq->decoder->num_rows();
    }
  }
}

void Engine::RunStep(StepStats* stats) {
  const int64_t n = runner_->num_rows();
  std::vector<int64_t> tokens(n);
  std::vector<RowSelection> selections(n);
  std::set<uint64_t> prompts;
  std::vector<int64_t> row_tokens;
  std::vector<RowSelection> row_selections;
  for (auto& [id, job] : running_) {
    for (auto& seq : job->sequences) {
      if (seq->finished) continue;
      row_tokens.clear();
      row_selections.clear();
      seq->decoder->Inputs(&row_tokens);
      seq->decoder->Selections(&row_selections);
      for (size_t r = 0; r < seq->slots.size(); ++r) {
        tokens[seq->slots[r]] = row_tokens[r];
        selections[seq->slots[r]] = row_selections[r];
      }
      prompts.insert(seq->prompt ? seq->prompt->uid() : 0);
    }
  }
  stats->rows = n;
  stats->distinct_prompts = static_cast<int64_t>(prompts.size());

  std::vector<RowOutput> outputs;
  Status s = runner_->Step(tokens, selections, &outputs);
  if (!s.ok()) {
    FailAllRunning(s);
    return;
  }
  const TimePoint now = Clock::now();
  std::vector<int64_t> copy_dst, copy_src;
  std::vector<RowOutput> seq_outputs;
  std::vector<int> reorder;
  std::vector<TokenLogprob> emitted;
  for (auto& [id, job] : running_) {
    for (auto& seq : job->sequences) {
      if (seq->finished) continue;
      seq_outputs.clear();
      for (int64_t slot : seq->slots) seq_outputs.push_back(std::move(outputs[slot]));
      emitted.clear();
      seq->decoder->Advance(seq_outputs.data(), &reorder, &emitted);
      stats->new_tokens += static_cast<int64_t>(seq->slots.size());
      for (size_t r = 0; r < reorder.size(); ++r) {
        if (reorder[r] != static_cast<int>(r)) {
          copy_dst.push_back(seq->slots[r]);
          copy_src.push_back(seq->slots[reorder[r]]);
        }
      }
      if (!job->has_first_token) {
        job->has_first_token = true;
        job->first_token = now;
      }
      if (job->kind == JobKind::kGenerate && job->generation.on_token) {
        for (const TokenLogprob& t : emitted) job->generation.on_token(t.token, t.logprob);
      }
      if (seq->decoder->done()) FinishSequence(seq.get());
    }
  }
  runner_->CopyHistory(copy_dst, copy_src);
}

void Engine::FinishSequence(Sequence* seq) {
  seq->finished = true;
  seq->job->member_results[seq->member] = seq->decoder->Result();
  --seq->job->unfinished;
}

void Engine::RemoveRows(const std::vector<bool>& dead) {
  // Swap-remove: holes are filled from the tail, so only tail rows move.
  std::vector<int64_t> keep(slots_.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = static_cast<int64_t>(i);
  int64_t n = static_cast<int64_t>(keep.size());
  for (int64_t i = 0; i < n;) {
    if (!dead[keep[i]]) {
      ++i;
      continue;
    }
    keep[i] = keep[n - 1];
    --n;
  }
  keep.resize(n);
  if (n == static_cast<int64_t>(slots_.size())) return;
  runner_->Compact(keep);
  std::vector<std::pair<Sequence*, int>> slots;
  for (int64_t i = 0; i < n; ++i) {
    auto [seq, row] = slots_[keep[i]];
    seq->slots[row] = i;
    slots.push_back({seq, row});
  }
  slots_ = std::move(slots);
}

void Engine::RetireFinished() {
  std::vector<bool> dead(slots_.size(), false);
  bool any = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    dead[i] = slots_[i].first->finished;
    any = any || dead[i];
  }
  if (any) RemoveRows(dead);
  const TimePoint now = Clock::now();
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second->unfinished == 0) {
      it->second->Complete(now);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void Engine::EndRunning(const std::vector<uint64_t>& ids, const Status& status) {
  if (ids.empty()) return;
  std::vector<std::unique_ptr<Job>> ended;
  for (uint64_t id : ids) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    for (auto& seq : it->second->sequences) seq->finished = true;
    ended.push_back(std::move(it->second));
    running_.erase(it);
  }
  std::vector<bool> dead(slots_.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) dead[i] = slots_[i].first->finished;
  RemoveRows(dead);
  for (auto& job : ended) job->Fail(status);
}

void Engine::FailAllRunning(const Status& status) {
  runner_->Reset();
  slots_.clear();
  auto running = std::move(running_);
  running_.clear();
  for (auto& [id, job] : running) job->Fail(status);
  running_rows_ = 0;
}

}  // namespace softserve::core
