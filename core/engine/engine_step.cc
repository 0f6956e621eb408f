// Engine: the work of one loop iteration — admitting jobs (one batched encoder pass for all
// new and recomputed rows), the decode step over every running row, and retiring finished rows
// so that waiting work can take their place. Runner failures are returned, not handled here:
// the loop hands them to RecoverFromFailure (engine_recovery.cc).
#include <set>

#include "core/engine/engine.h"
#include "core/engine/engine_job.h"

namespace softserve::core {

void Engine::Admit(std::vector<JobPtr> jobs, StepStats* stats) {
  const TimePoint now = Clock::now();
  std::vector<Job*> decoding;
  for (auto& job : jobs) {
    last_active_[job->common().tenant] = now;
    if (job->preemptions == 0) job->admitted = now;
    job->admit_order = next_admit_order_++;
    switch (job->kind) {
      case JobKind::kExplain: {
        StatusOr<ExplainResult> result = InternalError("explain did not run");
        const Status s = GuardRunner("explain", [&] {
          result = runner_->Explain(*job->explain.prompt, job->explain.top_k);
          return result.status();
        });
        if (s.ok()) SafeCall(job->explain_done, std::move(result).value());
        else job->Fail(s);
        break;
      }
      case JobKind::kScore:
      case JobKind::kEnsembleScore:
        StartScoring(job.get());
        scoring_[job->id] = std::move(job);
        break;
      case JobKind::kGenerate:
      case JobKind::kEnsembleGenerate:
        decoding.push_back(job.get());
        running_[job->id] = std::move(job);
        break;
    }
  }
  AdmitDecoding(decoding, stats);
}

void Engine::AdmitDecoding(std::vector<Job*> jobs, StepStats* stats) {
  if (jobs.empty()) return;
  const SpecialTokens special{config_.eos_token_id, config_.decoder_start_token_id};
  std::vector<PrefillItem> items;
  std::deque<std::vector<std::vector<int64_t>>> histories;  // stable addresses for the items
  for (Job* job : jobs) {
    const bool ensemble = job->kind == JobKind::kEnsembleGenerate;
    if (job->sequences.empty()) {  // first admission; a preempted job keeps its sequences
      const DecodingParams& params = ensemble ? job->ensemble.params : job->generation.params;
      const size_t members = ensemble ? job->ensemble.prompts.size() : 1;
      job->member_results.resize(members);
      for (size_t m = 0; m < members; ++m) {
        auto seq = std::make_unique<Sequence>();
        seq->job = job;
        seq->member = static_cast<int>(m);
        seq->prompt = ensemble ? job->ensemble.prompts[m] : job->generation.prompt;
        seq->decoder = SequenceDecoder::Create(params, special);
        job->sequences.push_back(std::move(seq));
        ++job->unfinished;
      }
    }
    for (auto& seq : job->sequences) {
      if (seq->finished) continue;
      histories.emplace_back();
      seq->decoder->Histories(&histories.back());
      const bool fresh = histories.back().empty() || histories.back()[0].empty();
      items.push_back({&job->common().input_ids, seq->prompt.get(), seq->decoder->num_rows(),
                       fresh ? nullptr : &histories.back()});
    }
  }
  const Status s = GuardRunner("encoder pass", [&] { return runner_->Prefill(items); });
  if (!s.ok()) {
    if (jobs.size() > 1) {
      for (Job* job : jobs) AdmitDecoding({job}, stats);  // isolate: only the bad job fails
      return;
    }
    auto node = running_.extract(jobs[0]->id);
    node.mapped()->Fail(s);
    return;
  }
  for (Job* job : jobs) {
    for (auto& seq : job->sequences) {
      if (seq->finished) continue;
      seq->slots.clear();
      for (int r = 0; r < seq->decoder->num_rows(); ++r) {
        seq->slots.push_back(static_cast<int64_t>(slots_.size()));
        slots_.push_back({seq.get(), r});
      }
      stats->prefill_rows += seq->decoder->num_rows();
    }
  }
}

bool Engine::IsPriority(const Sequence* seq) const {
  return priority_tenants_.count(seq->job->common().tenant) != 0;
}

Status Engine::ArrangePriorityRows(int64_t* prefix) {
  // Swaps priority rows that sit past the prefix with other rows inside it: only those move.
  const int64_t n = static_cast<int64_t>(slots_.size());
  int64_t m = 0;
  for (const auto& [seq, row] : slots_) m += IsPriority(seq) ? 1 : 0;
  std::vector<int64_t> inside, outside;  // misplaced rows on each side of m
  for (int64_t i = 0; i < n; ++i) {
    const bool p = IsPriority(slots_[i].first);
    if (i < m && !p) inside.push_back(i);
    if (i >= m && p) outside.push_back(i);
  }
  *prefix = m;
  if (inside.empty()) return OkStatus();
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  for (size_t k = 0; k < inside.size(); ++k) std::swap(order[inside[k]], order[outside[k]]);
  SOFTSERVE_RETURN_IF_ERROR(GuardRunner("row reorder", [&] { return runner_->Permute(order); }));
  std::vector<std::pair<Sequence*, int>> slots(n);
  for (int64_t i = 0; i < n; ++i) {
    slots[i] = slots_[order[i]];
    slots[i].first->slots[slots[i].second] = i;
  }
  slots_ = std::move(slots);
  return OkStatus();
}

void Engine::AccountStep(bool priority_step, double seconds) {
  if (priority_step) {
    priority_credit_ -= seconds;
  } else if (!over_share_tenants_.empty()) {
    // A full iteration while some tenant is heavy: the light ones earn time in proportion,
    // banking at most two iterations' worth (so a light tenant's next request starts with
    // credit), and get at most max_priority_time_fraction of the engine's time.
    const double f = limits_.max_priority_time_fraction;
    const double earned = seconds * f / (1 - f);
    priority_credit_ = std::min(priority_credit_ + earned, 2 * earned);
  } else {
    priority_credit_ = 0;
  }
}

Status Engine::RunStep(StepStats* stats, int64_t n) {
  // The first n rows step (all of them, or the priority prefix): a sequence is in the step when
  // its rows are (ArrangePriorityRows keeps a sequence's rows on one side).
  auto in_step = [n](const Sequence& seq) { return !seq.slots.empty() && seq.slots[0] < n; };
  std::vector<int64_t> tokens(n);
  std::vector<RowSelection> selections(n);
  std::set<uint64_t> prompts;
  std::vector<int64_t> row_tokens;
  std::vector<RowSelection> row_selections;
  for (auto& [id, job] : running_) {
    for (auto& seq : job->sequences) {
      if (seq->finished || !in_step(*seq)) continue;
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
  SOFTSERVE_RETURN_IF_ERROR(GuardRunner("decoder step", [&] { return runner_->Step(tokens, selections, &outputs); }));
  const TimePoint now = Clock::now();
  std::vector<int64_t> copy_dst, copy_src;
  std::vector<RowOutput> seq_outputs;
  std::vector<int> reorder;
  std::vector<TokenChoice> emitted;
  for (auto& [id, job] : running_) {
    for (auto& seq : job->sequences) {
      if (seq->finished || !in_step(*seq)) continue;
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
        for (const TokenChoice& t : emitted) SafeCall(job->generation.on_token, t);
      }
      if (job->kind == JobKind::kGenerate && job->generation.stop) {
        for (const TokenChoice& t : emitted) {
          if (SafeTest(job->generation.stop, t.token)) seq->decoder->Stop(FinishReason::kStopSequence);
        }
      }
      if (seq->decoder->done()) FinishSequence(seq.get());
    }
  }
  if (copy_dst.empty()) return OkStatus();
  return GuardRunner("beam reorder", [&] { return runner_->CopyHistory(copy_dst, copy_src); });
}

void Engine::FinishSequence(Sequence* seq) {
  seq->finished = true;
  seq->job->member_results[seq->member] = seq->decoder->Result();
  --seq->job->unfinished;
}

Status Engine::RemoveRows(const std::vector<bool>& dead) {
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
  if (n == static_cast<int64_t>(slots_.size())) return OkStatus();
  const Status s = GuardRunner("row compaction", [&] { return runner_->Compact(keep); });
  if (!s.ok()) {
    // The runner's rows are undefined now; the caller recovers every running job.
    for (auto& entry : slots_) entry.first->slots.clear();
    slots_.clear();
    return s;
  }
  std::vector<std::pair<Sequence*, int>> slots;
  for (int64_t i = 0; i < n; ++i) {
    auto [seq, row] = slots_[keep[i]];
    seq->slots[row] = i;
    slots.push_back({seq, row});
  }
  for (size_t i = 0; i < dead.size(); ++i) {
    if (dead[i]) slots_[i].first->slots.clear();
  }
  slots_ = std::move(slots);
  return OkStatus();
}

Status Engine::RetireFinished() {
  std::vector<bool> dead(slots_.size(), false);
  bool any = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    dead[i] = slots_[i].first->finished;
    any = any || dead[i];
  }
  const Status s = any ? RemoveRows(dead) : OkStatus();
  // Finished jobs complete whether or not the compaction worked: their results are final.
  const TimePoint now = Clock::now();
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second->unfinished == 0) {
      last_active_[it->second->common().tenant] = now;
      JobPtr job = std::move(it->second);
      it = running_.erase(it);
      job->Complete(now);
    } else {
      ++it;
    }
  }
  return s;
}

Status Engine::EndRunning(const std::vector<uint64_t>& ids, const Status& status) {
  if (ids.empty()) return OkStatus();
  EndScoring(ids, status);
  std::vector<JobPtr> ended;
  for (uint64_t id : ids) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    for (auto& seq : it->second->sequences) seq->finished = true;
    ended.push_back(std::move(it->second));
    running_.erase(it);
  }
  std::vector<bool> dead(slots_.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) dead[i] = slots_[i].first->finished;
  const Status s = RemoveRows(dead);
  for (auto& job : ended) job->Fail(status);
  return s;
}

Status Engine::EndRunningEarly(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return OkStatus();
  for (uint64_t id : ids) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    const FinishReason reason = it->second->EarlyEndReason();
    for (auto& seq : it->second->sequences) {
      if (seq->finished) continue;
      seq->decoder->Stop(reason);
      FinishSequence(seq.get());
    }
  }
  return RetireFinished();
}

void Engine::EndQueuedEarly(JobPtr job) {
  const TimePoint now = Clock::now();
  const FinishReason reason = job->EarlyEndReason();
  if (job->sequences.empty()) {  // never admitted: nothing generated
    job->admitted = now;
    job->member_results.assign(1, GenerationResult());
    job->member_results[0].finish_reason = reason;
  }
  for (auto& seq : job->sequences) {  // preempted: its decoders hold its tokens
    if (seq->finished) continue;
    seq->decoder->Stop(reason);
    FinishSequence(seq.get());
  }
  job->Complete(now);
}

void Engine::PublishRows() { running_rows_ = runner_->num_rows(); }

}  // namespace softserve::core
