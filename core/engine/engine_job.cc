#include "core/engine/engine_job.h"

#include <algorithm>

#include <map>

namespace softserve::core {
namespace {

double Seconds(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string IdsKey(const std::vector<int64_t>& ids) {
  std::string key;
  for (int64_t id : ids) key += std::to_string(id) + ",";
  return key;
}

}  // namespace

const RequestCommon& Engine::Job::common() const {
  switch (kind) {
    case JobKind::kGenerate: return generation.common;
    case JobKind::kScore: return score.common;
    case JobKind::kEnsembleGenerate:
    case JobKind::kEnsembleScore: return ensemble.common;
    case JobKind::kExplain: return explain.common;
  }
  return generation.common;
}

uint64_t Engine::Job::BatchKey() const {
  const PromptPtr* p = nullptr;
  switch (kind) {
    case JobKind::kGenerate: p = &generation.prompt; break;
    case JobKind::kScore: p = &score.prompt; break;
    case JobKind::kEnsembleGenerate:
    case JobKind::kEnsembleScore: p = ensemble.prompts.empty() ? nullptr : &ensemble.prompts[0]; break;
    case JobKind::kExplain: p = &explain.prompt; break;
  }
  return p != nullptr && *p ? (*p)->uid() : 0;
}

std::vector<PromptPtr> Engine::Job::MemberPrompts() const {
  switch (kind) {
    case JobKind::kGenerate: return {generation.prompt};
    case JobKind::kScore: return {score.prompt};
    case JobKind::kEnsembleGenerate:
    case JobKind::kEnsembleScore: return ensemble.prompts;
    case JobKind::kExplain: return {explain.prompt};
  }
  return {};
}

const std::vector<std::vector<int64_t>>& Engine::Job::Targets() const {
  static const std::vector<std::vector<int64_t>> kNone;
  if (kind == JobKind::kScore) return score.targets;
  if (kind == JobKind::kEnsembleScore) return ensemble.targets;
  return kNone;
}

TimePoint Engine::Job::EndBy() const {
  if (kind != JobKind::kGenerate) return common().deadline;
  if (generation.end_early && generation.end_early->load()) return TimePoint::min();
  return std::min(common().deadline, generation.time_limit);
}

FinishReason Engine::Job::EarlyEndReason() const {
  const bool asked = kind == JobKind::kGenerate && generation.end_early && generation.end_early->load();
  return asked ? FinishReason::kCancelled : FinishReason::kTimeLimit;
}

void Engine::Job::Fail(const Status& status) {
  switch (kind) {
    case JobKind::kGenerate: SafeCall(generation_done, status); break;
    case JobKind::kScore: SafeCall(score_done, status); break;
    case JobKind::kEnsembleGenerate:
    case JobKind::kEnsembleScore: SafeCall(ensemble_done, status); break;
    case JobKind::kExplain: SafeCall(explain_done, status); break;
  }
}

void Engine::Job::Complete(TimePoint now) {
  for (GenerationResult& r : member_results) {
    r.queue_seconds = Seconds(enqueued, admitted);
    r.first_token_seconds = Seconds(enqueued, has_first_token ? first_token : now);
    r.total_seconds = Seconds(enqueued, now);
  }
  if (kind == JobKind::kGenerate) {
    SafeCall(generation_done, std::move(member_results[0]));
    return;
  }
  EnsembleResult result;
  result.members = std::move(member_results);
  VoteEnsemble(text_of, &result);
  SafeCall(ensemble_done, std::move(result));
}

void Engine::Job::CompleteScoring() {
  for (ScoreResult& r : member_scores) {
    r.best = -1;
    for (size_t t = 0; t < r.total_logprobs.size(); ++t) {
      if (r.best < 0 || r.total_logprobs[t] > r.total_logprobs[r.best]) r.best = static_cast<int>(t);
    }
  }
  if (kind == JobKind::kScore) {
    SafeCall(score_done, std::move(member_scores[0]));
    return;
  }
  EnsembleResult result;
  result.member_scores = std::move(member_scores);
  SumEnsembleScores(&result);
  SafeCall(ensemble_done, std::move(result));
}

void VoteEnsemble(const std::function<std::string(const std::vector<int64_t>&)>& text_of,
                  EnsembleResult* result) {
  std::map<std::string, int> counts;
  std::vector<std::string> keys;
  for (const GenerationResult& m : result->members) {
    keys.push_back(text_of ? text_of(m.output_ids) : IdsKey(m.output_ids));
    ++counts[keys.back()];
  }
  result->winner = -1;
  result->votes = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (counts[keys[i]] > result->votes) {
      result->votes = counts[keys[i]];
      result->winner = static_cast<int>(i);
    }
  }
}

void SumEnsembleScores(EnsembleResult* result) {
  result->summed_logprobs.clear();
  result->best = -1;
  for (const ScoreResult& m : result->member_scores) {
    if (result->summed_logprobs.empty()) result->summed_logprobs.assign(m.total_logprobs.size(), 0.0);
    for (size_t t = 0; t < m.total_logprobs.size(); ++t) result->summed_logprobs[t] += m.total_logprobs[t];
  }
  for (size_t t = 0; t < result->summed_logprobs.size(); ++t) {
    if (result->best < 0 || result->summed_logprobs[t] > result->summed_logprobs[result->best]) {
      result->best = static_cast<int>(t);
    }
  }
}

}  // namespace softserve::core
