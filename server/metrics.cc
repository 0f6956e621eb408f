#include "server/metrics.h"

#include <exception>

namespace softserve::server {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return kBuckets;
}

const char* CodeName(grpc::StatusCode code) {
  return core::StatusCodeName(static_cast<core::StatusCode>(code));
}

}  // namespace

ServerMetrics::ServerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;  // NOLINT: builder DSL
  requests_ = &BuildCounter().Name("softserve_requests_total").Help("RPCs by method, tenant and status code").Register(*registry_);
  request_seconds_ = &BuildHistogram().Name("softserve_request_duration_seconds").Help("RPC wall time by method").Register(*registry_);
  http_requests_ = &BuildCounter().Name("softserve_http_requests_total").Help("HTTP front-end requests by route and status").Register(*registry_);
  http_seconds_ = &BuildHistogram().Name("softserve_http_request_duration_seconds").Help("HTTP front-end wall time by route (streams: to the last byte)").Register(*registry_);
  auto& queue = BuildHistogram().Name("softserve_queue_duration_seconds").Help("Time generation requests waited for a batch row").Register(*registry_);
  queue_seconds_ = &queue.Add({}, LatencyBuckets());
  auto& ttft = BuildHistogram().Name("softserve_time_to_first_token_seconds").Help("Submission to first generated token").Register(*registry_);
  first_token_seconds_ = &ttft.Add({}, LatencyBuckets());
  auto& rows = BuildHistogram().Name("softserve_batch_rows").Help("Decode rows per engine step").Register(*registry_);
  batch_rows_ = &rows.Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  auto& prompts = BuildHistogram().Name("softserve_batch_distinct_prompts").Help("Distinct soft prompts per engine step").Register(*registry_);
  batch_prompts_ = &prompts.Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128});
  auto& step = BuildHistogram().Name("softserve_step_duration_seconds").Help("Engine step wall time (admission + decode)").Register(*registry_);
  step_seconds_ = &step.Add({}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
  generated_tokens_ = &BuildCounter().Name("softserve_generated_tokens_total").Help("Tokens chosen by decode steps (rate() gives tokens/s)").Register(*registry_).Add({});
  queue_depth_ = &BuildGauge().Name("softserve_queue_depth_requests").Help("Requests waiting for admission").Register(*registry_).Add({});
  running_rows_ = &BuildGauge().Name("softserve_running_rows").Help("Decode rows in the batch").Register(*registry_).Add({});
  kv_cache_usage_ = &BuildGauge()
                         .Name("softserve_kv_cache_usage_ratio")
                         .Help("Decode rows in the batch over the rows the KV cache holds (0..1)")
                         .Register(*registry_)
                         .Add({});
  registry_prompts_ = &BuildGauge().Name("softserve_registry_prompts").Help("Stored prompt versions").Register(*registry_).Add({});
  uploads_in_progress_ = &BuildGauge().Name("softserve_uploads_in_progress").Help("Prompt uploads being received or parsed").Register(*registry_).Add({});
  training_jobs_active_ = &BuildGauge().Name("softserve_training_jobs_active").Help("Training jobs queued or running in the engine").Register(*registry_).Add({});
  training_steps_ = &BuildCounter().Name("softserve_training_steps_total").Help("Optimizer steps of training jobs").Register(*registry_).Add({});
  training_examples_ = &BuildCounter().Name("softserve_training_examples_total").Help("Examples trained on (rate() gives examples/s)").Register(*registry_).Add({});
  training_jobs_ended_ = &BuildCounter().Name("softserve_training_jobs_ended_total").Help("Training jobs ended, by state").Register(*registry_);
  registry_bytes_ = &BuildGauge().Name("softserve_registry_bytes").Help("Bytes of stored prompt matrices").Register(*registry_).Add({});
}

void ServerMetrics::SetStoreConnected(bool connected) {
  if (store_connected_ == nullptr) {
    store_connected_ = &prometheus::BuildGauge()
                            .Name("softserve_prompt_store_connected")
                            .Help("1 while the shared PostgreSQL prompt store is reachable, 0 while not")
                            .Register(*registry_)
                            .Add({});
  }
  store_connected_->Set(connected ? 1 : 0);
}

core::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(const std::string& listen) {
  std::unique_ptr<ServerMetrics> m(new ServerMetrics());
  if (!listen.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(m->http_, MetricsHttpServer::Start(listen, m->registry_));
  }
  return m;
}

void ServerMetrics::OnStep(const core::StepStats& s) {
  batch_rows_->Observe(static_cast<double>(s.rows));
  batch_prompts_->Observe(static_cast<double>(s.distinct_prompts));
  step_seconds_->Observe(s.seconds);
  generated_tokens_->Increment(static_cast<double>(s.new_tokens));
}

void ServerMetrics::RecordRequest(const std::string& rpc, const std::string& tenant, grpc::StatusCode code,
                                  double seconds) {
  requests_->Add({{"rpc", rpc}, {"tenant", tenant}, {"code", CodeName(code)}}).Increment();
  request_seconds_->Add({{"rpc", rpc}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::RecordHttp(const std::string& route, int status, double seconds) {
  http_requests_->Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  http_seconds_->Add({{"route", route}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::RecordGeneration(double queue_seconds, double first_token_seconds) {
  queue_seconds_->Observe(queue_seconds);
  first_token_seconds_->Observe(first_token_seconds);
}

int ServerMetrics::port() const { return http_ ? http_->port() : 0; }

void ServerMetrics::RecordTrainingJobEnded(const std::string& state) { training_jobs_ended_->Add({{"state", state}}).Increment(); }

}  // namespace softserve::server
