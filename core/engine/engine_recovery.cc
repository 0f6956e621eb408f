// Engine: preemption and failure recovery. Both rest on one fact: a generation job's decoders
// hold every token it has produced, so its rows can be dropped at any step and recomputed later
// (ModelRunner::Prefill with histories) without changing what it generates.
//
// Recovery from a failed step (an error or exception from the runner, or anything else thrown
// during the iteration): every running job leaves the runner, the runner is reset, and the jobs
// are probed in groups — each group is recomputed and stepped alone; a group that fails is split
// in halves, and a job that fails alone gets the error. Survivors (which advanced during their
// probe) go back to the head of the queue and are recomputed at their next admission.
#include "core/engine/engine.h"
#include "core/engine/engine_job.h"

namespace softserve::core {

Status Engine::Preempt(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return OkStatus();
  std::vector<JobPtr> preempted;
  for (uint64_t id : ids) {
    auto it = running_.find(id);
    if (it == running_.end()) continue;
    ++it->second->preemptions;
    preempted.push_back(std::move(it->second));
    running_.erase(it);
  }
  std::vector<bool> dead(slots_.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) dead[i] = running_.count(slots_[i].first->job->id) == 0;
  const Status s = RemoveRows(dead);
  PushFront(std::move(preempted));
  return s;
}

std::vector<Engine::JobPtr> Engine::DetachAllRunning() {
  slots_.clear();
  std::vector<JobPtr> jobs;
  for (auto& [id, job] : running_) {
    for (auto& seq : job->sequences) seq->slots.clear();
    jobs.push_back(std::move(job));
  }
  running_.clear();
  return jobs;
}

Status Engine::ResetRunner() {
  slots_.clear();
  const Status s = GuardRunner("runner reset", [&] { return runner_->Reset(); });
  runner_broken_ = !s.ok();
  PublishRows();
  return s;
}

void Engine::RecoverFromFailure(const Status& status) {
  try {
    std::vector<JobPtr> jobs = DetachAllRunning();
    if (observer_ != nullptr) observer_->OnStepFailure(status, static_cast<int64_t>(jobs.size()));
    if (const Status r = ResetRunner(); !r.ok()) {
      for (auto& job : jobs) job->Fail(status);
      return;
    }
    std::vector<JobPtr> survivors;
    Isolate(std::move(jobs), status, &survivors);
    PushFront(std::move(survivors));
  } catch (...) {
    FailAll(status);
  }
}

void Engine::Isolate(std::vector<JobPtr> group, const Status& status, std::vector<JobPtr>* survivors) {
  if (group.empty()) return;
  const Status s = Probe(&group);
  if (s.ok()) {
    for (auto& job : group) survivors->push_back(std::move(job));
    return;
  }
  if (group.size() == 1) {
    group[0]->Fail(s);
    return;
  }
  const size_t half = group.size() / 2;
  std::vector<JobPtr> first, second;
  for (size_t i = 0; i < group.size(); ++i) (i < half ? first : second).push_back(std::move(group[i]));
  Isolate(std::move(first), s, survivors);
  Isolate(std::move(second), s, survivors);
}

Status Engine::Probe(std::vector<JobPtr>* group) {
  // REQUIRES: the runner is empty. The group runs one step alone; its jobs advance by a token
  // (those that finish complete) and leave the runner again.
  std::vector<Job*> jobs;
  for (auto& job : *group) {
    jobs.push_back(job.get());
    running_[job->id] = std::move(job);
  }
  group->clear();
  StepStats stats;
  AdmitDecoding(jobs, &stats);  // a job whose recompute fails alone gets the error here
  Status s = OkStatus();
  if (runner_->num_rows() > 0) {
    s = RunStep(&stats, runner_->num_rows());
    if (s.ok()) s = RetireFinished();
  }
  *group = DetachAllRunning();
  const Status r = ResetRunner();
  return s.ok() ? r : s;
}

void Engine::FailAll(const Status& status) {
  std::vector<JobPtr> jobs = DetachAllRunning();
  for (auto& [id, job] : scoring_) jobs.push_back(std::move(job));
  scoring_.clear();
  (void)ResetRunner();
  for (auto& job : jobs) job->Fail(status);
}

}  // namespace softserve::core
