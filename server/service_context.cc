#include "server/service_context.h"

#include <spdlog/spdlog.h>

namespace softserve::server {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

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
  return std::make_unique<Slot>(this, tenant.name);
}

void UploadLimiter::Release(const std::string& tenant) {
  MutexLock lock(&mu_);
  --by_tenant_[tenant];
  --total_;
}

core::Status ServiceContext::CheckAccepting() const {
  if (draining->load()) return core::UnavailableError("the server is draining for shutdown; retry on another replica");
  return core::OkStatus();
}

void ServiceContext::Record(const char* rpc, const std::string& tenant, const grpc::Status& status,
                            std::chrono::steady_clock::time_point start, const std::string& detail) const {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string label = tenant.empty() || config->metrics_tenant_label == "none" ? "-" : tenant;
  metrics->RecordRequest(rpc, label, status.error_code(), seconds);
  spdlog::debug("rpc={} tenant={} code={} ms={:.1f} {}{}{}", rpc, tenant.empty() ? "-" : tenant,
                core::StatusCodeName(static_cast<core::StatusCode>(status.error_code())), seconds * 1000, detail,
                status.ok() ? "" : " error=", status.error_message());
}

}  // namespace softserve::server
