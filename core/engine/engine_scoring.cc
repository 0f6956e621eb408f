// Engine: scoring as bounded work. An admitted scoring job is a list of units (one target of one
// member); each loop iteration runs at most one scoring pass, filled by taking one unit from
// each scoring job in turn until max_score_bytes is reached (at least one unit per pass), so a
// large scoring request neither stalls the decode steps nor delays another tenant's small one
// by more than a pass, and no pass holds more working memory than the limit.
#include <deque>
#include <map>

#include "core/engine/engine.h"
#include "core/engine/engine_job.h"

namespace softserve::core {

void Engine::StartScoring(Job* job) { job->next_unit = 0; }

void Engine::RunScoringPass(StepStats* stats) {
  if (scoring_.empty()) return;
  // Jobs in turn, starting after the one served first last time.
  std::vector<Job*> order;
  for (auto it = scoring_.upper_bound(scoring_cursor_); it != scoring_.end(); ++it) order.push_back(it->second.get());
  for (auto it = scoring_.begin(); it != scoring_.upper_bound(scoring_cursor_); ++it) order.push_back(it->second.get());
  scoring_cursor_ = order.front()->id;
  std::map<Job*, std::vector<const ScoreUnit*>> taken;
  int64_t bytes = 0, units = 0;
  for (bool progress = true, full = false; progress && !full;) {
    progress = false;
    for (Job* job : order) {
      if (job->next_unit >= job->units.size()) continue;
      const ScoreUnit& u = job->units[job->next_unit];
      if (units > 0 && bytes + u.bytes > limits_.max_score_bytes) {
        full = true;
        break;
      }
      taken[job].push_back(&u);
      ++job->next_unit;
      bytes += u.bytes;
      ++units;
      progress = true;
    }
  }
  stats->scored_targets = units;

  // One batched pass; if it fails, each job's units alone, so only a failing job gets the error.
  auto run = [this](const std::map<Job*, std::vector<const ScoreUnit*>>& work) {
    std::vector<ScoreItem> items;
    std::deque<std::vector<std::vector<int64_t>>> targets;  // stable addresses for the items
    std::vector<std::pair<Job*, const ScoreUnit*>> order;   // one per (item, target)
    for (const auto& [job, list] : work) {
      const std::vector<PromptPtr> prompts = job->MemberPrompts();
      for (size_t i = 0; i < list.size();) {
        const int member = list[i]->member;
        targets.emplace_back();
        for (; i < list.size() && list[i]->member == member; ++i) {
          targets.back().push_back(job->Targets()[list[i]->target]);
          order.push_back({job, list[i]});
        }
        items.push_back({&job->common().input_ids, prompts[member].get(), &targets.back()});
      }
    }
    StatusOr<std::vector<ScoreOutput>> out = InternalError("scoring did not run");
    const Status s = GuardRunner("scoring pass", [&] {
      out = runner_->Score(items);
      return out.status();
    });
    if (!s.ok()) return s;
    size_t k = 0;
    for (ScoreOutput& item : *out) {
      for (size_t t = 0; t < item.totals.size(); ++t, ++k) {
        auto [job, unit] = order[k];
        ScoreResult& r = job->member_scores[unit->member];
        r.total_logprobs[unit->target] = item.totals[t];
        r.token_logprobs[unit->target] = std::move(item.token_logprobs[t]);
      }
    }
    return OkStatus();
  };
  std::vector<uint64_t> failed;
  if (!run(taken).ok()) {
    for (const auto& [job, list] : taken) {
      const Status s = run({{job, list}});
      if (!s.ok()) {
        failed.push_back(job->id);
        job->Fail(s);
      }
    }
  }
  for (uint64_t id : failed) scoring_.erase(id);
  for (auto it = scoring_.begin(); it != scoring_.end();) {
    if (it->second->next_unit >= it->second->units.size()) {
      JobPtr job = std::move(it->second);
      it = scoring_.erase(it);
      job->CompleteScoring();
    } else {
      ++it;
    }
  }
}

void Engine::EndScoring(const std::vector<uint64_t>& ids, const Status& status) {
  for (uint64_t id : ids) {
    auto it = scoring_.find(id);
    if (it == scoring_.end()) continue;
    JobPtr job = std::move(it->second);
    scoring_.erase(it);
    job->Fail(status);
  }
}

}  // namespace softserve::core
