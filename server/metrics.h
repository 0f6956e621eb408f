// ServerMetrics: Prometheus metrics on an HTTP port (prometheus-cpp), named
// softserve_<what>_<unit>, few labels. Also the engine's step observer.
// Thread-safe: prometheus-cpp metric families are.
#ifndef SOFTSERVE_SERVER_METRICS_H_
#define SOFTSERVE_SERVER_METRICS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "core/common/status.h"
#include "core/engine/engine.h"
#include "server/metrics_http.h"

namespace softserve::server {

class ServerMetrics : public core::EngineObserver {
 public:
  // `listen` empty: metrics are kept but not served. Returns Unavailable if the port is taken.
  static core::StatusOr<std::unique_ptr<ServerMetrics>> Create(const std::string& listen);

  void OnStep(const core::StepStats& stats) override;
  void RecordRequest(const std::string& rpc, const std::string& tenant, grpc::StatusCode code, double seconds);
  void RecordGeneration(double queue_seconds, double first_token_seconds);
  // One HTTP request of the front-end: its route ("/v1/completions", "/v1/models" or "other"),
  // status and wall time (a stream's until its last byte).
  void RecordHttp(const std::string& route, int status, double seconds);
  void SetQueueDepth(int64_t v) { queue_depth_->Set(static_cast<double>(v)); }
  // Rows in the batch, and as a share of the rows the KV cache holds (for load-aware routers).
  void SetRunningRows(int64_t v, int64_t capacity) {
    running_rows_->Set(static_cast<double>(v));
    kv_cache_usage_->Set(capacity > 0 ? static_cast<double>(v) / static_cast<double>(capacity) : 0.0);
  }
  void SetRegistry(int64_t prompts, int64_t bytes) {
    registry_prompts_->Set(static_cast<double>(prompts));
    registry_bytes_->Set(static_cast<double>(bytes));
  }
  // Prompt uploads being received or parsed, all tenants.
  void SetUploadsInProgress(int64_t v) { uploads_in_progress_->Set(static_cast<double>(v)); }
  // Training jobs (TrainingService) queued or running in the engine, all tenants.
  void SetTrainingJobsActive(int64_t v) { training_jobs_active_->Set(static_cast<double>(v)); }
  // One optimizer step of a training job (of `examples` examples).
  void RecordTrainingStep(int64_t examples) {
    training_steps_->Increment();
    training_examples_->Increment(static_cast<double>(examples));
  }
  // A training job ended: "succeeded", "failed" or "cancelled".
  void RecordTrainingJobEnded(const std::string& state);
  // 1 while the shared prompt store (--store-url) is reachable, 0 while not; absent without one.
  void SetStoreConnected(bool connected);
  int port() const;  // 0 when not served

 private:
  ServerMetrics();
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> http_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_seconds_;
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_seconds_;
  prometheus::Histogram* queue_seconds_;
  prometheus::Histogram* first_token_seconds_;
  prometheus::Histogram* batch_rows_;
  prometheus::Histogram* batch_prompts_;
  prometheus::Histogram* step_seconds_;
  prometheus::Counter* generated_tokens_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* running_rows_;
  prometheus::Gauge* kv_cache_usage_;
  prometheus::Gauge* registry_prompts_;
  prometheus::Gauge* registry_bytes_;
  prometheus::Gauge* uploads_in_progress_;
  prometheus::Gauge* training_jobs_active_;
  prometheus::Counter* training_steps_;
  prometheus::Counter* training_examples_;
  prometheus::Family<prometheus::Counter>* training_jobs_ended_;
  prometheus::Gauge* store_connected_ = nullptr;  // created on first use
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_METRICS_H_
