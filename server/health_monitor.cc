#include "server/health_monitor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <grpcpp/health_check_service_interface.h>

namespace softserve::server {
namespace {

const char* const kServices[] = {"", "softserve.v1.InferenceService", "softserve.v1.PromptService",
                                 "softserve.v1.ModelService"};

}  // namespace

HealthMonitor::HealthMonitor(grpc::Server* server, const core::Engine* engine, const core::PromptRegistry* registry,
                             ServerMetrics* metrics, double watchdog_seconds,
                             std::function<bool()> store_connected)
    : server_(server),
      engine_(engine),
      registry_(registry),
      metrics_(metrics),
      watchdog_seconds_(watchdog_seconds),
      store_connected_(std::move(store_connected)) {
  {
    MutexLock lock(&mu_);
    Apply();
  }
  thread_ = std::thread([this] { Loop(); });
}

HealthMonitor::~HealthMonitor() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void HealthMonitor::SetReady(bool ready) {
  MutexLock lock(&mu_);
  ready_ = ready;
  Apply();
}

void HealthMonitor::Apply() {
  auto* health = server_->GetHealthCheckService();
  for (const char* s : kServices) health->SetServingStatus(s, ready_ && !stuck_);
  health->SetServingStatus("liveness", !stuck_);
}

void HealthMonitor::Loop() {
  const absl::Duration tick = absl::Seconds(std::clamp(watchdog_seconds_ / 4, 0.01, 1.0));
  MutexLock lock(&mu_);
  while (!stop_) {
    cv_.WaitWithTimeout(&mu_, tick);
    if (stop_) break;
    const double busy = engine_->busy_seconds();
    const bool stuck = busy > watchdog_seconds_;
    if (stuck != stuck_) {
      stuck_ = stuck;
      if (stuck) {
        spdlog::error("engine watchdog: one step has run for {:.1f} s (limit {:.1f} s): liveness and readiness "
                      "NOT_SERVING", busy, watchdog_seconds_);
      } else {
        spdlog::warn("engine watchdog: the engine is making progress again: SERVING");
      }
      Apply();
    }
    metrics_->SetQueueDepth(engine_->queue_depth());
    metrics_->SetTrainingJobsActive(engine_->background_tasks());
    metrics_->SetRunningRows(engine_->running_rows(), engine_->limits().max_rows);
    metrics_->SetRegistry(registry_->total_prompts(), registry_->total_bytes());
    if (store_connected_) {
      const int state = store_connected_() ? 1 : 0;
      if (state != store_state_) {
        if (state == 1) {
          spdlog::info("prompt store: reachable; following changes");
        } else {
          spdlog::warn("prompt store: unreachable; serving the prompts this replica has, uploads and deletes "
                       "get UNAVAILABLE until it is back");
        }
        store_state_ = state;
      }
      metrics_->SetStoreConnected(state == 1);
    }
  }
}

}  // namespace softserve::server
