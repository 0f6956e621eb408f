#include "core/engine/scheduler.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

namespace softserve::core {
namespace {

struct Usage {
  int64_t rows = 0;
  int64_t kv = 0;
};

// One PlanStep call. The phases are methods so that each reads as the header describes it.
class Planner {
 public:
  Planner(const SchedulerLimits& limits, TimePoint now, StepPlan* plan)
      : limits_(limits), now_(now), plan_(plan) {}

  void Run(const std::vector<PendingWork>& queue, const std::vector<RunningWork>& running,
           const std::vector<TenantActivity>& recent) {
    TakeRunning(running);
    std::vector<const PendingWork*> live = LiveQueue(queue);
    for (const TenantActivity& a : recent) {
      if (now_ - a.last_active < limits_.tenant_idle_grace) active_.insert(a.tenant);
    }
    const int64_t active = std::max<int64_t>(1, static_cast<int64_t>(active_.size()));
    share_rows_ = std::max<int64_t>(1, limits_.max_rows / active);
    share_kv_ = std::max<int64_t>(1, limits_.max_tokens_in_flight / active);
    share_prefill_ = std::max<int64_t>(1, limits_.max_prefill_tokens / active);
    if (!live.empty()) {
      BuildTenantOrder(live);
      const bool waiting = FairPhase();
      if (!waiting) FillPhase();
    }
    NamePriorityTenants();
  }

 private:
  struct TenantQueue {
    std::string tenant;
    std::deque<const PendingWork*> jobs;
  };

  // Ends cancelled and expired running work; the rest counts toward totals and usage.
  void TakeRunning(const std::vector<RunningWork>& running) {
    for (const RunningWork& r : running) {
      if (r.cancelled) {
        plan_->cancelled_running.push_back(r.id);
      } else if (r.deadline <= now_) {
        plan_->expired_running.push_back(r.id);
      } else {
        Charge(r.tenant, r.rows, r.kv_tokens);
        active_.insert(r.tenant);
        key_set_ = true;
        key_ = r.batch_key;
        if (r.preemptible && r.rows > 0) victims_.push_back(&r);
      }
    }
  }

  std::vector<const PendingWork*> LiveQueue(const std::vector<PendingWork>& queue) {
    std::vector<const PendingWork*> live;
    for (const PendingWork& w : queue) {
      if (w.cancelled) {
        plan_->cancelled_queued.push_back(w.id);
      } else if (w.deadline <= now_) {
        plan_->expired_queued.push_back(w.id);
      } else {
        live.push_back(&w);
        active_.insert(w.tenant);
      }
    }
    return live;
  }

  // Per-tenant FIFOs in round-robin order, starting after the tenant served last. Under
  // kSameKey only jobs with the batch's key take part (the first live job in fairness order
  // picks it for an empty batch); the others wait without blocking their tenant's matching jobs.
  void BuildTenantOrder(const std::vector<const PendingWork*>& live) {
    const std::string& cursor = plan_->tenant_cursor;
    const bool same_key = limits_.policy == BatchPolicy::kSameKey;
    if (same_key && !key_set_) {
      auto rank = [&](const PendingWork* w) { return std::make_pair(w->tenant <= cursor, w->tenant); };
      const PendingWork* first = live.front();
      for (const PendingWork* w : live) {
        if (rank(w) < rank(first)) first = w;
      }
      key_ = first->batch_key;
    }
    std::map<std::string, std::deque<const PendingWork*>> by_tenant;
    for (const PendingWork* w : live) {
      if (!same_key || w->batch_key == key_) by_tenant[w->tenant].push_back(w);
    }
    auto start = by_tenant.upper_bound(cursor);
    for (auto it = start; it != by_tenant.end(); ++it) order_.push_back({it->first, std::move(it->second)});
    for (auto it = by_tenant.begin(); it != start; ++it) order_.push_back({it->first, std::move(it->second)});
  }

  bool WithinShare(const std::string& tenant, const PendingWork& w) const {
    auto it = usage_.find(tenant);
    if (it == usage_.end() || (it->second.rows == 0 && it->second.kv == 0)) return true;
    return it->second.rows + w.rows <= share_rows_ && it->second.kv + w.kv_tokens <= share_kv_;
  }
  bool OverShare(const std::string& tenant) const {
    auto it = usage_.find(tenant);
    return it != usage_.end() && (it->second.rows > share_rows_ || it->second.kv > share_kv_);
  }
  bool Fits(const PendingWork& w) const {
    return rows_ + w.rows <= limits_.max_rows && kv_ + w.kv_tokens <= limits_.max_tokens_in_flight;
  }
  // The step's encoder budget, and the tenant's share of it (its first job always fits).
  bool PrefillFits(const std::string& tenant, const PendingWork& w) const {
    if (plan_->admit.empty()) return true;
    if (prefill_ + w.prefill_tokens > limits_.max_prefill_tokens) return false;
    auto it = tenant_prefill_.find(tenant);
    return it == tenant_prefill_.end() || it->second + w.prefill_tokens <= share_prefill_;
  }

  // Counts rows and KV tokens toward the totals and the tenant's usage (negative: frees them).
  void Charge(const std::string& tenant, int64_t rows, int64_t kv) {
    rows_ += rows;
    kv_ += kv;
    usage_[tenant].rows += rows;
    usage_[tenant].kv += kv;
  }

  void Admit(TenantQueue* t) {
    const PendingWork& w = *t->jobs.front();
    plan_->admit.push_back(w.id);
    plan_->tenant_cursor = t->tenant;
    Charge(t->tenant, w.rows, w.kv_tokens);
    prefill_ += w.prefill_tokens;
    tenant_prefill_[t->tenant] += w.prefill_tokens;
    t->jobs.pop_front();
  }

  // How far over its share a tenant is (0 when within), comparable across tenants.
  double Excess(const std::string& tenant) const {
    auto it = usage_.find(tenant);
    if (it == usage_.end()) return 0;
    const double rows = static_cast<double>(it->second.rows - share_rows_) / static_cast<double>(share_rows_);
    const double kv = static_cast<double>(it->second.kv - share_kv_) / static_cast<double>(share_kv_);
    return std::max({0.0, rows, kv});
  }

  // The newest preemptible job of the tenant furthest over its share (not `for_tenant`; among
  // tenants equally far over, the newest job), or null when no tenant is over its share.
  const RunningWork* NextVictim(const std::string& for_tenant, const std::set<uint64_t>& taken) const {
    const RunningWork* best = nullptr;
    double best_excess = 0;
    for (const RunningWork* r : victims_) {
      if (r->tenant == for_tenant || taken.count(r->id) != 0 || !OverShare(r->tenant)) continue;
      const double excess = Excess(r->tenant);
      if (best == nullptr || excess > best_excess || (excess == best_excess && r->admit_order > best->admit_order)) {
        best = r;
        best_excess = excess;
      }
    }
    return best;
  }

  // Frees rows and KV tokens for `w` of `tenant` by preempting over-share tenants' jobs.
  // Commits (and returns true) only if `w` then fits.
  bool Preempt(const std::string& tenant, const PendingWork& w) {
    if (!limits_.preemption || limits_.policy == BatchPolicy::kSameKey) return false;
    const auto saved_usage = usage_;
    const int64_t saved_rows = rows_, saved_kv = kv_;
    std::vector<uint64_t> picked;
    while (!Fits(w)) {
      const RunningWork* v = NextVictim(tenant, preempted_);
      if (v == nullptr) break;
      preempted_.insert(v->id);
      picked.push_back(v->id);
      Charge(v->tenant, -v->rows, -v->kv_tokens);
    }
    if (Fits(w)) {
      plan_->preempt.insert(plan_->preempt.end(), picked.begin(), picked.end());
      return true;
    }
    for (uint64_t id : picked) preempted_.erase(id);
    usage_ = saved_usage;
    rows_ = saved_rows;
    kv_ = saved_kv;
    return false;
  }

  // Returns whether a head job within its tenant's share is left waiting.
  bool FairPhase() {
    bool waiting = false;
    std::vector<bool> stopped(order_.size(), false);
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t t = 0; t < order_.size(); ++t) {
        if (stopped[t] || order_[t].jobs.empty()) continue;
        const PendingWork& w = *order_[t].jobs.front();
        if (!WithinShare(order_[t].tenant, w)) {
          stopped[t] = true;  // over its share: only the work-conserving phase may admit it
          continue;
        }
        if (!PrefillFits(order_[t].tenant, w) || (!Fits(w) && !Preempt(order_[t].tenant, w))) {
          stopped[t] = true;  // keeps this tenant's FIFO order: nothing behind it jumps ahead
          waiting = true;
          if (OverPrefillShare(order_[t].tenant, w)) prefill_limited_.insert(order_[t].tenant);
          continue;
        }
        Admit(&order_[t]);
        progress = true;
      }
    }
    return waiting;
  }

  // True when the tenant's own share of the encoder budget (not the step's) stops `w`.
  bool OverPrefillShare(const std::string& tenant, const PendingWork& w) const {
    auto it = tenant_prefill_.find(tenant);
    return it != tenant_prefill_.end() && it->second + w.prefill_tokens > share_prefill_;
  }

  // Capacity an active tenant's unused share keeps free from over-share work.
  Usage Reserved() const {
    Usage r;
    for (const std::string& tenant : active_) {
      auto it = usage_.find(tenant);
      const Usage u = it == usage_.end() ? Usage{} : it->second;
      r.rows += std::max<int64_t>(0, share_rows_ - u.rows);
      r.kv += std::max<int64_t>(0, share_kv_ - u.kv);
    }
    return r;
  }

  void FillPhase() {
    std::vector<bool> stopped(order_.size(), false);
    const Usage reserved = Reserved();  // over-share admissions do not change it
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t t = 0; t < order_.size(); ++t) {
        if (stopped[t] || order_[t].jobs.empty()) continue;
        const PendingWork& w = *order_[t].jobs.front();
        const bool fits = rows_ + w.rows + reserved.rows <= limits_.max_rows &&
                          kv_ + w.kv_tokens + reserved.kv <= limits_.max_tokens_in_flight;
        if (!PrefillFits(order_[t].tenant, w) || !fits) {
          stopped[t] = true;
          continue;
        }
        Admit(&order_[t]);
        progress = true;
      }
    }
  }

  // Heavy ("over share"): at least half its share of rows, more KV tokens than its share, or
  // more encoder work waiting than its share of the step's budget admits. Priority: the others
  // that have rows (light tenants).
  void NamePriorityTenants() {
    std::set<std::string> over = prefill_limited_;
    for (const auto& [tenant, u] : usage_) {
      if (2 * u.rows >= share_rows_ || u.kv > share_kv_) over.insert(tenant);
    }
    if (over.empty()) return;
    plan_->over_share_tenants.assign(over.begin(), over.end());
    for (const auto& [tenant, u] : usage_) {
      if (u.rows > 0 && over.count(tenant) == 0) plan_->priority_tenants.push_back(tenant);
    }
  }

  const SchedulerLimits& limits_;
  const TimePoint now_;
  StepPlan* plan_;
  int64_t rows_ = 0, kv_ = 0, prefill_ = 0;
  int64_t share_prefill_ = 1;
  std::map<std::string, int64_t> tenant_prefill_;
  std::set<std::string> prefill_limited_;
  std::map<std::string, Usage> usage_;
  std::set<std::string> active_;
  std::vector<const RunningWork*> victims_;
  std::set<uint64_t> preempted_;
  std::vector<TenantQueue> order_;
  int64_t share_rows_ = 1, share_kv_ = 1;
  bool key_set_ = false;
  uint64_t key_ = 0;
};

}  // namespace

StepPlan PlanStep(const std::vector<PendingWork>& queue, const std::vector<RunningWork>& running,
                  const SchedulerLimits& limits, TimePoint now, const std::string& tenant_cursor,
                  const std::vector<TenantActivity>& recent) {
  StepPlan plan;
  plan.tenant_cursor = tenant_cursor;
  Planner(limits, now, &plan).Run(queue, running, recent);
  return plan;
}

}  // namespace softserve::core
