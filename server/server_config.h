// ServerConfig: everything `softserve-server` is told, from a JSON config file (--config) with
// command-line flags (CLI11) on top. `--help` lists every option with its default. One table
// (server_config.cc) names each option once for both: flag --max-batch-rows is JSON
// "max_batch_rows" (under "limits" for limits).
//
// Tenants and their API keys (stored only as SHA-256 hex digests; `softserve keygen` makes a
// key and its digest) come from the config file or a separate tenants file (--tenants-file,
// e.g. a Kubernetes Secret):
//   {"tenants": [{"name": "acme", "api_key_sha256": "<hex>", "admin": false,
//                 "max_prompts": 1000, "max_prompt_bytes": 268435456, "max_inflight": 64,
//                 "max_inflight_tokens": 1048576, "max_uploads": 2}]}
#ifndef SOFTSERVE_SERVER_SERVER_CONFIG_H_
#define SOFTSERVE_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"

namespace softserve::server {

struct TenantConfig {
  std::string name;
  std::string api_key_sha256;  // lower-case hex
  bool admin = false;
  int64_t max_prompts = 1000;                 // stored prompt versions
  int64_t max_prompt_bytes = 256 << 20;       // bytes of stored prompt matrices
  int64_t max_inflight = 64;                  // concurrent inference calls
  int64_t max_inflight_tokens = 1 << 20;      // cost (core/engine/cost.h) of those calls
  int64_t max_uploads = 2;                    // concurrent prompt uploads
  int64_t max_training_jobs = 1;              // queued or running training jobs
};

// TrainingService limits (training_jobs.h).
struct TrainingLimits {
  int64_t max_jobs = 4;                 // queued or running, all tenants
  int64_t max_examples = 10000;         // train + dev examples per job
  int64_t max_steps = 100000;           // optimizer steps per job
  int64_t max_batch_size = 64;
  int64_t examples_per_slice = 1;       // examples per engine slice (bounds a request's wait)
  int64_t max_ended_jobs_kept = 100;    // per tenant, for GetTrainingJob / ListTrainingJobs
};

struct ServerConfig {
  std::string listen = "0.0.0.0:50051";
  // Metrics expose per-tenant figures: loopback only unless the operator says otherwise.
  std::string metrics_listen = "127.0.0.1:9090";  // empty: no metrics endpoint
  std::string metrics_tenant_label = "name";      // "name": tenant names as labels; "none": "-"
  // OpenAI-compatible HTTP/JSON front-end (http_gateway.h); empty: off.
  std::string http_listen;
  int64_t http_threads = 32;               // connections served at once (a stream holds one)
  double http_max_timeout_seconds = 600;   // deadline of an HTTP call (and the most it may ask)
  std::string model_dir = "var/models/t5-small-random";
  std::string tokenizer;  // empty: <model_dir>/spiece.model if present
  std::string device = "cpu";
  std::string dtype = "float32";
  int64_t threads = 0;
  std::string cpu_gemm = "auto";
  std::string store_dir = "var/prompts";
  // A libpq URL (postgresql://user@host/db): prompts live in PostgreSQL, shared by replicas;
  // empty: the local directory store_dir. The password comes from the URL, PGPASSWORD or a
  // passfile; logs show the URL with it redacted.
  std::string store_url;
  // With store_url: bytes of prompt values a replica keeps in memory (least recently used go;
  // a request for one of them reads it from the store again).
  int64_t shared_prompt_cache_bytes = int64_t{1} << 30;
  std::string upload_dir;  // where uploads are spooled; empty: <store_dir>/.uploads
  core::EngineLimits engine;
  core::T5RunnerOptions runner;  // KV cache and prompt cache memory
  int64_t max_inputs_per_request = 64;
  int64_t max_upload_bytes = 256 << 20;
  int64_t max_concurrent_uploads = 8;       // uploads being received or parsed, all tenants
  int64_t max_message_bytes = 16 << 20;
  int64_t max_stream_buffer_messages = 4096;  // a stream whose reader lags further is cancelled
  TrainingLimits training;
  double max_prompt_abs_value = 1e4;
  double drain_seconds = 30;
  // SIGTERM: readiness reports NOT_SERVING (and new work is refused) this long before the engine
  // is told to drain, so that load balancers and health checkers see it while the server still
  // answers; running work keeps running throughout.
  double drain_notice_seconds = 5;
  double watchdog_seconds = 60;  // an engine step running longer makes the server unhealthy
  std::string log_level = "info";
  std::vector<TenantConfig> tenants;
  std::string tenants_file;
  // Development only: a tenant "default" (admin) with this API key.
  std::string dev_api_key;
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  std::string port_file;          // where to write the bound gRPC port (tests use port 0)
  std::string metrics_port_file;  // likewise for the metrics port
  std::string http_port_file;     // likewise for the HTTP port

  std::string UploadDir() const;
};

// Parses argv (and the --config file, and --tenants-file). Sets *help to the usage text when
// --help was given. Returns InvalidArgument naming the bad option or file.
core::StatusOr<ServerConfig> LoadServerConfig(int argc, char** argv, std::string* help);

// Applies a JSON config file's text (the --config format) onto `c`. InvalidArgument naming the
// unknown option or bad value.
core::Status ApplyServerConfigJson(const std::string& json_text, ServerConfig* c);

// Parses {"tenants": [...]} (also the "tenants" key of a full config). InvalidArgument for a
// digest that is not 64 lower-case hex digits (a placeholder left in an example file says so
// and names `softserve keygen`), duplicate names or keys, unknown fields.
core::Status ParseTenants(const std::string& json_text, std::vector<TenantConfig>* out);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_SERVER_CONFIG_H_
