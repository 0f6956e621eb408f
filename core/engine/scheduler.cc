#include "core/engine/scheduler.h"

#include <deque>
#include <map>

namespace softserve::core {

StepPlan PlanStep(const std::vector<PendingWork>& queue, const std::vector<RunningWork>& running,
                  const SchedulerLimits& limits, TimePoint now, const std::string& tenant_cursor) {
  StepPlan plan;
  plan.tenant_cursor = tenant_cursor;

  int64_t rows = 0, kv_tokens = 0;
  bool key_set = false;
  uint64_t key = 0;
  for (const RunningWork& r : running) {
    if (r.cancelled) {
      plan.cancelled_running.push_back(r.id);
    } else if (r.deadline <= now) {
      plan.expired_running.push_back(r.id);
    } else {
      rows += r.rows;
      kv_tokens += r.kv_tokens;
      key_set = true;
      key = r.batch_key;
    }
  }
  const bool same_key = limits.policy == BatchPolicy::kSameKey;

  // Per-tenant FIFOs of live jobs, tenants in name order. Under kSameKey only jobs with the
  // batch's key take part (the first live job in fairness order picks it for an empty batch);
  // the others wait without blocking their tenant's matching jobs.
  std::map<std::string, std::deque<const PendingWork*>> by_tenant;
  std::vector<const PendingWork*> live;
  for (const PendingWork& w : queue) {
    if (w.cancelled) {
      plan.cancelled_queued.push_back(w.id);
    } else if (w.deadline <= now) {
      plan.expired_queued.push_back(w.id);
    } else {
      live.push_back(&w);
    }
  }
  if (same_key && !key_set && !live.empty()) {
    // Round-robin order: tenants after the cursor first, then the rest; FIFO within a tenant.
    auto rank = [&](const PendingWork* w) { return std::make_pair(w->tenant <= tenant_cursor, w->tenant); };
    const PendingWork* first = live.front();
    for (const PendingWork* w : live) {
      if (rank(w) < rank(first)) first = w;
    }
    key_set = true;
    key = first->batch_key;
  }
  for (const PendingWork* w : live) {
    if (!same_key || w->batch_key == key) by_tenant[w->tenant].push_back(w);
  }
  if (by_tenant.empty()) return plan;

  // Round-robin starting after the tenant served last.
  std::vector<std::deque<const PendingWork*>*> order;
  auto start = by_tenant.upper_bound(tenant_cursor);
  for (auto it = start; it != by_tenant.end(); ++it) order.push_back(&it->second);
  for (auto it = by_tenant.begin(); it != start; ++it) order.push_back(&it->second);

  int64_t prefill = 0;
  std::vector<bool> blocked(order.size(), false);
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t t = 0; t < order.size(); ++t) {
      if (blocked[t] || order[t]->empty()) continue;
      const PendingWork& w = *order[t]->front();
      const bool fits_rows = rows + w.rows <= limits.max_rows;
      const bool fits_kv = kv_tokens + w.kv_tokens <= limits.max_tokens_in_flight;
      const bool fits_prefill =
          plan.admit.empty() || prefill + w.prefill_tokens <= limits.max_prefill_tokens;
      if (!(fits_rows && fits_kv && fits_prefill)) {
        blocked[t] = true;  // keeps this tenant's FIFO order: nothing behind it jumps ahead
        continue;
      }
      plan.admit.push_back(w.id);
      plan.tenant_cursor = w.tenant;
      rows += w.rows;
      kv_tokens += w.kv_tokens;
      prefill += w.prefill_tokens;
      order[t]->pop_front();
      progress = true;
    }
  }
  return plan;
}

}  // namespace softserve::core
