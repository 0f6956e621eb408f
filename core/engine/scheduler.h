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
// A tenant stays active for `tenant_idle_grace` after its last work (given in `recent`), and the
// work-conserving phase leaves its unused share free meanwhile: a tenant sending one request
// after another does not make the flood preempt-and-recompute between each.
// Each tenant's encoder tokens per step are bounded by max_prefill_tokens / active tenants (its
// first job of the step always fits), so one tenant's long inputs cannot fill every step.
// A tenant is heavy (`over_share_tenants`) when it holds at least half its share of rows or more
// KV tokens than its share, or when its share of the encoder budget stopped one of its jobs this
// step. While some tenant is, the light tenants that have rows are named `priority_tenants`: the
// engine may step their rows alone, within a time budget that keeps at least half the engine's
// time for the heavy ones (see engine.h).
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
  int64_t max_prefill_tokens = 2048;      // encoder tokens admitted per step
  BatchPolicy policy = BatchPolicy::kMixed;
  bool preemption = true;                 // preempt over-share tenants for waiting ones
  Clock::duration tenant_idle_grace = std::chrono::seconds(1);
};

// When a tenant last had work (admitted or finished), for tenants without work now.
struct TenantActivity {
  std::string tenant;
  TimePoint last_active;
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
  std::vector<std::string> priority_tenants;    // within their share while another is over it
  std::vector<std::string> over_share_tenants;  // holding more rows or KV tokens than their share
  std::string tenant_cursor;  // pass back in next time
};

// `queue` is in arrival order (preempted jobs first, as the engine requeues them at the front).
// `tenant_cursor` is the tenant served last ("" at start).
StepPlan PlanStep(const std::vector<PendingWork>& queue, const std::vector<RunningWork>& running,
                  const SchedulerLimits& limits, TimePoint now, const std::string& tenant_cursor,
                  const std::vector<TenantActivity>& recent = {});

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_ENGINE_SCHEDULER_H_
