// What every service handler shares: the engine, registry, tokenizer, authenticator, metrics,
// limits, per-tenant budgets, the upload workers and the draining flag. Owned by main();
// handlers hold a const pointer. Thread-safe: every member is itself thread-safe or immutable.
#ifndef SOFTSERVE_SERVER_SERVICE_CONTEXT_H_
#define SOFTSERVE_SERVER_SERVICE_CONTEXT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/engine/engine.h"
#include "core/model/t5_config.h"
#include "core/prompts/prompt_formats.h"
#include "core/prompts/prompt_registry.h"
#include "core/tokenizer/tokenizer.h"
#include "server/active_generations.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/request_id.h"
#include "server/server_config.h"
#include "server/sync.h"

namespace softserve::server {

class UploadWorkers;

// Per-tenant budgets of inference work in flight: calls (max_inflight) and their cost in tokens
// (max_inflight_tokens, core/engine/cost.h), so that a tenant's share is counted by what its
// requests cost, not by how many it makes.
class InflightLimiter {
 public:
  // Held by a request until it completes; releases its budget on destruction.
  class Slot {
   public:
    Slot(InflightLimiter* owner, std::string tenant, int64_t tokens)
        : owner_(owner), tenant_(std::move(tenant)), tokens_(tokens) {}
    ~Slot() { owner_->Release(tenant_, tokens_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    InflightLimiter* owner_;
    std::string tenant_;
    int64_t tokens_;
  };
  // ResourceExhausted naming the limit when the tenant already has max_inflight calls or the
  // request would take it over max_inflight_tokens; InvalidArgument when the request alone costs
  // more than max_inflight_tokens (it could never run).
  core::StatusOr<std::unique_ptr<Slot>> Acquire(const TenantConfig& tenant, int64_t cost_tokens);
  int64_t InFlight(const std::string& tenant);

 private:
  struct Usage {
    int64_t calls = 0;
    int64_t tokens = 0;
  };
  void Release(const std::string& tenant, int64_t tokens);
  Mutex mu_;
  std::map<std::string, Usage> usage_ ABSL_GUARDED_BY(mu_);
};

// Uploads being received or processed: per tenant (max_uploads) and for the whole server
// (max_concurrent_uploads), so that uploads bound the server's disk spool and worker time.
class UploadLimiter {
 public:
  class Slot {
   public:
    Slot(UploadLimiter* owner, std::string tenant) : owner_(owner), tenant_(std::move(tenant)) {}
    ~Slot() { owner_->Release(tenant_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    UploadLimiter* owner_;
    std::string tenant_;
  };
  // `on_change` (may be null) is told the total in progress after each change, under the
  // limiter's mutex (it must not call back into the limiter).
  explicit UploadLimiter(int64_t max_total, std::function<void(int64_t)> on_change = nullptr)
      : max_total_(max_total), on_change_(std::move(on_change)) {}
  // ResourceExhausted naming the limit that is reached.
  core::StatusOr<std::unique_ptr<Slot>> Acquire(const TenantConfig& tenant);

 private:
  void Release(const std::string& tenant);
  const int64_t max_total_;
  const std::function<void(int64_t)> on_change_;
  Mutex mu_;
  int64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> by_tenant_ ABSL_GUARDED_BY(mu_);
};

// What one call's access-log line says besides its RPC, status and duration; filled in as the
// call learns it (unknown numbers stay -1 and are left out).
struct CallRecord {
  CallIds ids;
  std::string tenant;  // empty until authenticated
  std::string prompt;  // "name@version"; empty when none
  int64_t input_tokens = -1;
  int64_t output_tokens = -1;
  double queue_seconds = -1;  // the longest of the call's inputs
  std::string detail;         // free text (e.g. "inputs=2")
};

// "name@version" of a prompt for logs; empty for none.
std::string PromptLabel(const core::PromptPtr& prompt);

struct ServiceContext {
  const ServerConfig* config = nullptr;
  core::Engine* engine = nullptr;
  core::PromptRegistry* registry = nullptr;
  const core::Tokenizer* tokenizer = nullptr;  // null when the model has no tokenizer
  const Authenticator* auth = nullptr;
  ServerMetrics* metrics = nullptr;
  InflightLimiter* inflight = nullptr;
  UploadLimiter* uploads = nullptr;
  UploadWorkers* upload_workers = nullptr;
  ActiveGenerations* active = nullptr;  // generation calls by request id; may be null
  std::atomic<bool>* draining = nullptr;
  core::T5Config model_config;
  bool random_weights = false;
  core::PromptLimits prompt_limits;
  // With --store-url: whether the shared store is reachable (null for the local store).
  std::function<bool()> store_connected;

  // Unavailable while draining (SIGTERM received).
  core::Status CheckAccepting() const;
  // Records metrics (the tenant label follows --metrics-tenant-label) and writes the call's
  // access-log line: one JSON object per call on its own line of standard error, with the
  // request id, trace context, tenant, RPC, prompt, input and output tokens, queue and total
  // seconds and status (docs/API.md, "Request ids and the access log").
  void Record(const char* rpc, const CallRecord& record, const grpc::Status& status,
              std::chrono::steady_clock::time_point start) const;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_SERVICE_CONTEXT_H_
