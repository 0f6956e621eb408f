// What every service handler shares: the engine, registry, tokenizer, authenticator, metrics,
// limits, per-tenant in-flight counters and the draining flag. Owned by main(); handlers hold
// a const pointer. Thread-safe: every member is itself thread-safe or immutable.
#ifndef SOFTSERVE_SERVER_SERVICE_CONTEXT_H_
#define SOFTSERVE_SERVER_SERVICE_CONTEXT_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/engine/engine.h"
#include "core/model/t5_config.h"
#include "core/prompts/prompt_formats.h"
#include "core/prompts/prompt_registry.h"
#include "core/tokenizer/tokenizer.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/server_config.h"

namespace softserve::server {

// Per-tenant counts of inference requests in flight.
class InflightLimiter {
 public:
  // Held by a request until it completes; releases its slot on destruction.
  class Slot {
   public:
    Slot(InflightLimiter* owner, std::string tenant) : owner_(owner), tenant_(std::move(tenant)) {}
    ~Slot() { owner_->Release(tenant_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    InflightLimiter* owner_;
    std::string tenant_;
  };
  // ResourceExhausted naming the limit when the tenant already has `limit` in flight.
  core::StatusOr<std::unique_ptr<Slot>> Acquire(const std::string& tenant, int64_t limit);
  int64_t InFlight(const std::string& tenant);

 private:
  void Release(const std::string& tenant);
  std::mutex mu_;
  std::map<std::string, int64_t> counts_;
};

struct ServiceContext {
  const ServerConfig* config = nullptr;
  core::Engine* engine = nullptr;
  core::PromptRegistry* registry = nullptr;
  const core::Tokenizer* tokenizer = nullptr;  // null when the model has no tokenizer
  const Authenticator* auth = nullptr;
  ServerMetrics* metrics = nullptr;
  InflightLimiter* inflight = nullptr;
  std::atomic<bool>* draining = nullptr;
  core::T5Config model_config;
  bool random_weights = false;
  core::PromptLimits prompt_limits;

  // Unavailable while draining (SIGTERM received).
  core::Status CheckAccepting() const;
  // Records metrics and the per-request debug log line.
  void Record(const char* rpc, const std::string& tenant, const grpc::Status& status,
              std::chrono::steady_clock::time_point start, const std::string& detail) const;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_SERVICE_CONTEXT_H_
