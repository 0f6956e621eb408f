// HealthMonitor: keeps the standard grpc.health.v1 statuses true to the process's state and
// refreshes the gauges, from one thread that wakes several times per watchdog period:
//   "liveness"                 SERVING unless the engine has been inside one loop iteration
//                              longer than --watchdog-seconds (a step that never returns);
//                              then NOT_SERVING, so that an orchestrator restarts the process;
//   "" and each softserve service (readiness)
//                              SERVING once ready, NOT_SERVING while draining or stuck.
// A stuck engine that comes back (a long step that ends) turns both back to SERVING.
// With a shared prompt store, `store_connected` is polled too: the gauge
// softserve_prompt_store_connected follows it and each change is logged. Readiness does not: a
// replica cut off from PostgreSQL still serves the prompts it has (uploads and deletes get
// UNAVAILABLE saying the store is unreachable).
// Thread-safe.
#ifndef SOFTSERVE_SERVER_HEALTH_MONITOR_H_
#define SOFTSERVE_SERVER_HEALTH_MONITOR_H_

#include <functional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "core/engine/engine.h"
#include "core/prompts/prompt_registry.h"
#include "server/metrics.h"
#include "server/sync.h"

namespace softserve::server {

class HealthMonitor {
 public:
  // Starts with liveness SERVING and readiness NOT_SERVING. Everything must outlive it.
  HealthMonitor(grpc::Server* server, const core::Engine* engine, const core::PromptRegistry* registry,
                ServerMetrics* metrics, double watchdog_seconds,
                std::function<bool()> store_connected = nullptr);
  ~HealthMonitor();  // stops the thread
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Readiness as the server sees it (ready after warm-up, not ready once draining).
  void SetReady(bool ready);

 private:
  void Loop();
  void Apply() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::Server* const server_;
  const core::Engine* const engine_;
  const core::PromptRegistry* const registry_;
  ServerMetrics* const metrics_;
  const double watchdog_seconds_;
  const std::function<bool()> store_connected_;
  int store_state_ = -1;  // loop thread only: last seen (1/0), -1 before the first look
  Mutex mu_;
  CondVar cv_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool stuck_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_HEALTH_MONITOR_H_
