// The batching decision, as a pure function of (queue, running work, limits, now, fairness
// cursor): which queued jobs join the batch before the next decode step, which running jobs
// give their rows back (preemption), and which queued or running jobs must end because their
// deadline passed or their caller cancelled.
//
// Fairness is by cost, not by count. Every tenant with live work (queued or running) is
// *active*; each active tenant's fair share is max_rows / active and max_tokens_in_flight /
// active. Admission runs in two phases, each interleaving tenants round-robin (a tenant's own
// jobs stay FIFO: nothing overtakes a blocked head):
//   1. fair phase: a head job is admitted when it keeps its tenant within its share (a tenant
//      with nothing running may always start one job, whatever its size) and fits the free
//      rows, KV tokens and the step's encoder budget. When such a job does not fit the free
//      rows or KV tokens, running jobs of tenants *over* their share are preempted — newest
//      first, from the tenant furthest over — until it fits (only if it then fits);
//   2. work-conserving phase: only when no tenant's within-share head is left waiting, heads
//      that take their tenant over its share fill whatever capacity is still free.
// So an idle server gives one tenant every row, and a tenant that arrives at a full server gets
// its share back at the next step instead of waiting for the flood to finish. Preempted jobs
// keep their progress: the engine recomputes their state when they are admitted again.
// The encoder budget (max_prefill_tokens) bounds the work of one step; the first job of a step
// is always allowed its full input, so a long input cannot wait forever.
// No libtorch, no clock reads, no threads: unit-tested with a fake clock.
#ifndef SOFTSERVE_CORE_ENGINE_SCHEDULER_H_
#define SOFTSERVE_CORE_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/request.h"

namespace softserve::core {

// Which jobs may share the batch.
enum class BatchPolicy {
  kMixed,     // any jobs, whatever their prompts (softserve's mode)
  kSameKey,   // only jobs with the running batch's key (one prompt per batch, as a server that
              // cannot mix tasks must run); used to measure what mixing buys
};

struct SchedulerLimits {
  int64_t max_rows = 64;                  // decode rows (beams count individually)
  int64_t max_tokens_in_flight = 1 << 16;  // sum of KV tokens the running rows may reach
  int64_t max_prefill_tokens = 4096;      // encoder tokens admitted per step
  BatchPolicy policy = BatchPolicy::kMixed;
  bool preemption = true;                 // preempt over-share tenants for waiting ones
};

// A queued job as the scheduler sees it.
struct PendingWork {
  uint64_t id = 0;
  std::string tenant;
  int64_t rows = 0;            // decode rows it will hold (0 for one-shot jobs: score, explain)
  int64_t kv_tokens = 0;       // KV tokens it may reach while running
  int64_t prefill_tokens = 0;  // encoder tokens of its admission
  TimePoint deadline = NoDeadline();
  bool cancelled = false;
  uint64_t batch_key = 0;      // BatchPolicy::kSameKey: the prompt the job runs with
};

struct RunningWork {
  uint64_t id = 0;
  std::string tenant;
  uint64_t batch_key = 0;
  int64_t rows = 0;
  int64_t kv_tokens = 0;
  TimePoint deadline = NoDeadline();
  bool cancelled = false;
  uint64_t admit_order = 0;    // larger = admitted more recently (preempted first)
  bool preemptible = false;    // holds rows whose state the engine can recompute
};

struct StepPlan {
  std::vector<uint64_t> preempt;  // running jobs to take out first (their rows are freed)
  std::vector<uint64_t> admit;    // in admission order
  std::vector<uint64_t> expired_queued;
  std::vector<uint64_t> cancelled_queued;
  std::vector<uint64_t> expired_running;
  std::vector<uint64_t> cancelled_running;
  std::string tenant_cursor;  // pass back in next time
};

// `queue` is in arrival order (preempted jobs first, as the engine requeues them at the front).
// `tenant_cursor` is the tenant served last ("" at start).
StepPlan PlanStep(const std::vector<PendingWork>& queue, const std::vector<RunningWork>& running,
                  const SchedulerLimits& limits, TimePoint now, const std::string& tenant_cursor);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_SCHEDULER_H_
