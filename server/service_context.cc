#include "server/service_context.h"

#include <spdlog/spdlog.h>

namespace softserve::server {

core::StatusOr<std::unique_ptr<InflightLimiter::Slot>> InflightLimiter::Acquire(const std::string& tenant,
                                                                                 int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t& n = counts_[tenant];
  if (n >= limit) {
    return core::ResourceExhaustedError("tenant '" + tenant + "' has " + std::to_string(n) +
                                        " requests in flight, its limit (max_inflight) is " +
                                        std::to_string(limit) + "; wait for some to finish");
  }
  ++n;
  return std::make_unique<Slot>(this, tenant);
}

void InflightLimiter::Release(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  --counts_[tenant];
}

int64_t InflightLimiter::InFlight(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[tenant];
}

core::Status ServiceContext::CheckAccepting() const {
  if (draining->load()) return core::UnavailableError("the server is draining for shutdown; retry on another replica");
  return core::OkStatus();
}

void ServiceContext::Record(const char* rpc, const std::string& tenant, const grpc::Status& status,
                            std::chrono::steady_clock::time_point start, const std::string& detail) const {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics->RecordRequest(rpc, tenant.empty() ? "-" : tenant, status.error_code(), seconds);
  spdlog::debug("rpc={} tenant={} code={} ms={:.1f} {}{}{}", rpc, tenant.empty() ? "-" : tenant,
                core::StatusCodeName(static_cast<core::StatusCode>(status.error_code())), seconds * 1000, detail,
                status.ok() ? "" : " error=", status.error_message());
}

}  // namespace softserve::server
