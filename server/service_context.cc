#include "server/service_context.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

#include "core/common/json.h"

namespace softserve::server {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

// The access log: its own logger, raw lines (no time or level prefix) on standard error, so that
// every line is one JSON object; always at info, whatever --log-level says of the others.
spdlog::logger& AccessLog() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return *logger;
}

std::string UtcTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

core::StatusOr<std::unique_ptr<InflightLimiter::Slot>> InflightLimiter::Acquire(const TenantConfig& tenant,
                                                                                 int64_t cost_tokens) {
  if (cost_tokens > tenant.max_inflight_tokens) {
    return core::InvalidArgumentError("the request costs " + Str(cost_tokens) +
                                      " tokens of work (rows x (prompt + input + new tokens), or scored tokens); "
                                      "your tenant's limit (max_inflight_tokens) is " +
                                      Str(tenant.max_inflight_tokens) + ": split it into smaller requests");
  }
  MutexLock lock(&mu_);
  Usage& u = usage_[tenant.name];
  if (u.calls >= tenant.max_inflight) {
    return core::ResourceExhaustedError("your tenant has " + Str(u.calls) + " requests in flight, its limit "
                                        "(max_inflight) is " + Str(tenant.max_inflight) + "; wait for some to finish");
  }
  if (u.tokens + cost_tokens > tenant.max_inflight_tokens) {
    return core::ResourceExhaustedError("your tenant has " + Str(u.tokens) + " tokens of work in flight; this request "
                                        "adds " + Str(cost_tokens) + ", over its limit (max_inflight_tokens) of " +
                                        Str(tenant.max_inflight_tokens) + "; wait for some to finish");
  }
  ++u.calls;
  u.tokens += cost_tokens;
  return std::make_unique<Slot>(this, tenant.name, cost_tokens);
}

void InflightLimiter::Release(const std::string& tenant, int64_t tokens) {
  MutexLock lock(&mu_);
  Usage& u = usage_[tenant];
  --u.calls;
  u.tokens -= tokens;
}

int64_t InflightLimiter::InFlight(const std::string& tenant) {
  MutexLock lock(&mu_);
  return usage_[tenant].calls;
}

core::StatusOr<std::unique_ptr<UploadLimiter::Slot>> UploadLimiter::Acquire(const TenantConfig& tenant) {
  MutexLock lock(&mu_);
  int64_t& mine = by_tenant_[tenant.name];
  if (mine >= tenant.max_uploads) {
    return core::ResourceExhaustedError("your tenant has " + Str(mine) + " uploads in progress, its limit "
                                        "(max_uploads) is " + Str(tenant.max_uploads) + "; upload one at a time");
  }
  if (total_ >= max_total_) {
    return core::ResourceExhaustedError("the server is receiving " + Str(total_) + " uploads, its limit "
                                        "(max_concurrent_uploads) is " + Str(max_total_) + "; retry shortly");
  }
  ++mine;
  ++total_;
  if (on_change_) on_change_(total_);
  return std::make_unique<Slot>(this, tenant.name);
}

void UploadLimiter::Release(const std::string& tenant) {
  MutexLock lock(&mu_);
  --by_tenant_[tenant];
  --total_;
  if (on_change_) on_change_(total_);
}

core::Status ServiceContext::CheckAccepting() const {
  if (draining->load()) return core::UnavailableError("the server is draining for shutdown; retry on another replica");
  return core::OkStatus();
}

std::string PromptLabel(const core::PromptPtr& prompt) {
  return prompt == nullptr ? std::string() : prompt->key().name + "@" + std::to_string(prompt->key().version);
}

void ServiceContext::Record(const char* rpc, const CallRecord& record, const grpc::Status& status,
                            std::chrono::steady_clock::time_point start) const {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string label = record.tenant.empty() || config->metrics_tenant_label == "none" ? "-" : record.tenant;
  metrics->RecordRequest(rpc, label, status.error_code(), seconds);
  using core::JsonValue;
  JsonValue line = JsonValue::MakeObject();
  line.Add("time", JsonValue::String(UtcTimestamp()));
  line.Add("request_id", JsonValue::String(record.ids.request_id));
  if (!record.ids.traceparent.empty()) line.Add("traceparent", JsonValue::String(record.ids.traceparent));
  line.Add("tenant", record.tenant.empty() ? JsonValue() : JsonValue::String(record.tenant));
  line.Add("rpc", JsonValue::String(rpc));
  if (!record.prompt.empty()) line.Add("prompt", JsonValue::String(record.prompt));
  if (record.input_tokens >= 0) line.Add("input_tokens", JsonValue::Int(record.input_tokens));
  if (record.output_tokens >= 0) line.Add("output_tokens", JsonValue::Int(record.output_tokens));
  if (record.queue_seconds >= 0) line.Add("queue_seconds", JsonValue::Number(record.queue_seconds));
  line.Add("total_seconds", JsonValue::Number(seconds));
  line.Add("status", JsonValue::String(core::StatusCodeName(static_cast<core::StatusCode>(status.error_code()))));
  if (!status.ok()) line.Add("error", JsonValue::String(status.error_message()));
  if (!record.detail.empty()) line.Add("detail", JsonValue::String(record.detail));
  AccessLog().info(line.Serialize());
}

}  // namespace softserve::server
