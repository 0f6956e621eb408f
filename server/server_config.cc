#include "server/server_config.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <variant>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/prompts/prompt_names.h"

namespace softserve::server {
namespace {

using core::InvalidArgumentError;
using core::JsonValue;
using core::Status;

// One option: its flag (--name) and JSON key (name with '_' for '-'), where it lives in the
// JSON ("" top level, "limits"), and where it goes. JSON-only options have no flag; flag-only
// ones (the config file itself, ports files, the development key) are not read from JSON.
struct Option {
  std::string name;
  std::string section;
  std::variant<std::string*, int64_t*, double*, bool*> target;
  std::string help;
  bool in_json = true;
};

std::string JsonKey(const std::string& name) {
  std::string k = name;
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

std::vector<Option> Options(ServerConfig* c, std::string* config_file) {
  core::EngineLimits& e = c->engine;
  return {
      {"config", "", config_file, "JSON config file (same option names, limits under \"limits\")", false},
      {"listen", "", &c->listen, "gRPC address (port 0 picks a free port)"},
      {"metrics-listen", "", &c->metrics_listen, "Prometheus /metrics address; empty disables"},
      {"http-listen", "", &c->http_listen, "OpenAI-compatible HTTP/JSON address (port 0 picks a free port); empty disables"},
      {"http-threads", "", &c->http_threads, "HTTP connections served at once (a streamed completion holds one)"},
      {"http-max-timeout-seconds", "", &c->http_max_timeout_seconds, "deadline of an HTTP call, and the most x-request-timeout-seconds may ask"},
      {"metrics-tenant-label", "", &c->metrics_tenant_label, "tenant label on metrics: name or none"},
      {"model-dir", "", &c->model_dir, "Hugging Face T5 checkpoint directory"},
      {"tokenizer", "", &c->tokenizer, "SentencePiece model (default <model-dir>/spiece.model)"},
      {"device", "", &c->device, "cpu, cuda or cuda:N"},
      {"dtype", "", &c->dtype, "float32 or bfloat16"},
      {"threads", "", &c->threads, "CPU threads for the model (0 = one per core)"},
      {"cpu-gemm", "", &c->cpu_gemm, "CPU float32 GEMM: auto (packed weights where the CPU has AVX-512F or AVX2+FMA, else oneDNN where libtorch has it), packed, onednn or torch"},
      {"store-dir", "", &c->store_dir, "prompt store directory"},
      {"store-url", "", &c->store_url, "PostgreSQL URL of a store shared by replicas (replaces --store-dir)"},
      {"shared-prompt-cache-bytes", "", &c->shared_prompt_cache_bytes,
       "with --store-url: prompt values kept in memory (others are read on first use)"},
      {"upload-dir", "", &c->upload_dir, "upload spool directory (default <store-dir>/.uploads)"},
      {"drain-seconds", "", &c->drain_seconds, "SIGTERM: time running requests get to finish"},
      {"drain-notice-seconds", "", &c->drain_notice_seconds, "SIGTERM: NOT_SERVING this long before draining"},
      {"watchdog-seconds", "", &c->watchdog_seconds, "an engine step running longer fails liveness"},
      {"log-level", "", &c->log_level, "trace, debug, info, warn or error (debug: one line per request)"},
      {"tenants-file", "", &c->tenants_file, "JSON {\"tenants\": [...]} with SHA-256 key digests"},
      {"tls-cert-file", "", &c->tls_cert_file, "PEM server certificate (enables TLS)"},
      {"tls-key-file", "", &c->tls_key_file, "PEM server private key"},
      {"tls-client-ca-file", "", &c->tls_client_ca_file, "PEM CA to require client certificates (mTLS)"},
      {"dev-api-key", "", &c->dev_api_key, "DEVELOPMENT ONLY: tenant 'default' (admin) with this key", false},
      {"port-file", "", &c->port_file, "write the bound gRPC port here once listening", false},
      {"metrics-port-file", "", &c->metrics_port_file, "write the bound metrics port here", false},
      {"http-port-file", "", &c->http_port_file, "write the bound HTTP port here", false},
      {"max-batch-rows", "limits", &e.max_rows, "decode rows per step (beams count each)"},
      {"kv-cache-bytes", "limits", &c->runner.kv_cache_bytes,
       "KV cache memory; rows beyond what it holds are not admitted (0 = what max-batch-rows need)"},
      {"kv-cache-memory-fraction", "limits", &c->runner.kv_cache_memory_fraction,
       "CUDA: KV cache as this fraction of the device's free memory after loading (0 = off)"},
      {"prompt-cache-bytes", "limits", &c->runner.prompt_cache_bytes, "prompts kept resident on the device"},
      {"max-tokens-in-flight", "limits", &e.max_tokens_in_flight, "KV tokens of all running rows"},
      {"max-prefill-tokens", "limits", &e.max_prefill_tokens, "encoder tokens admitted per step"},
      {"max-queue", "limits", &e.max_queue, "waiting requests before RESOURCE_EXHAUSTED"},
      {"max-queue-tokens", "limits", &e.max_queue_tokens, "tokens of work waiting, all tenants"},
      {"max-tenant-queue-tokens", "limits", &e.max_tenant_queue_tokens, "tokens of work one tenant may have waiting"},
      {"max-score-bytes", "limits", &e.max_score_bytes, "working memory of one scoring pass"},
      {"preemption", "limits", &e.preemption, "preempt tenants over their share for waiting ones"},
      {"priority-steps", "limits", &e.priority_steps, "step light tenants' rows alone while others are heavy"},
      {"max-priority-time-fraction", "limits", &e.max_priority_time_fraction, "engine time light tenants' priority steps may take"},
      {"tenant-idle-grace-ms", "limits", &e.tenant_idle_grace_ms, "a tenant keeps its share this long after its last work"},
      {"max-input-tokens", "limits", &e.max_input_tokens, "tokens per input"},
      {"max-prompt-rows", "limits", &e.max_prompt_rows, "rows per soft prompt"},
      {"max-prompt-abs-value", "limits", &c->max_prompt_abs_value, "largest |value| in an uploaded prompt"},
      {"max-new-tokens", "limits", &e.max_new_tokens, "tokens generated per input"},
      {"max-beams", "limits", &e.max_beams, "beam width"},
      {"max-top-logprobs", "limits", &e.max_top_logprobs, "alternatives per generated token (top_logprobs)"},
      {"max-score-targets", "limits", &e.max_score_targets, "candidates per Score request"},
      {"max-target-tokens", "limits", &e.max_target_tokens, "tokens per scored candidate"},
      {"max-ensemble-prompts", "limits", &e.max_ensemble_prompts, "prompts per Ensemble request"},
      {"max-explain-top-k", "limits", &e.max_explain_top_k, "neighbours per position in Explain"},
      {"max-inputs-per-request", "limits", &c->max_inputs_per_request, "inputs per Generate request"},
      {"max-upload-bytes", "limits", &c->max_upload_bytes, "bytes per prompt upload"},
      {"max-concurrent-uploads", "limits", &c->max_concurrent_uploads, "uploads in progress, all tenants"},
      {"max-message-bytes", "limits", &c->max_message_bytes, "gRPC message size limit"},
      {"max-stream-buffer-messages", "limits", &c->max_stream_buffer_messages,
       "messages a lagging stream reader may leave unread"},
      {"max-background-time-fraction", "limits", &e.max_background_time_fraction,
       "engine time training may take while requests are served (it also runs whenever the engine is idle)"},
      {"max-training-jobs", "limits", &c->training.max_jobs, "training jobs queued or running, all tenants"},
      {"max-training-examples", "limits", &c->training.max_examples, "train + dev examples per training job"},
      {"max-training-steps", "limits", &c->training.max_steps, "optimizer steps per training job"},
      {"max-training-batch-size", "limits", &c->training.max_batch_size, "examples per training step"},
      {"training-examples-per-slice", "limits", &c->training.examples_per_slice,
       "training examples per engine slice: a request arriving meanwhile waits for one slice"},
  };
}

Status ReadJson(const JsonValue& o, const Option& opt) {
  const JsonValue* v = o.Find(JsonKey(opt.name));
  if (v == nullptr) return core::OkStatus();
  const std::string where = "'" + JsonKey(opt.name) + "'";
  struct Visitor {
    const JsonValue* v;
    const std::string& where;
    Status operator()(std::string* out) const {
      if (!v->is_string()) return InvalidArgumentError(where + " must be a string");
      *out = v->string_value();
      return core::OkStatus();
    }
    Status operator()(int64_t* out) const {
      if (!v->is_int() || v->int_value() < 0) return InvalidArgumentError(where + " must be a non-negative integer");
      *out = v->int_value();
      return core::OkStatus();
    }
    Status operator()(double* out) const {
      if (!v->is_number() || v->number() < 0) return InvalidArgumentError(where + " must be a non-negative number");
      *out = v->number();
      return core::OkStatus();
    }
    Status operator()(bool* out) const {
      if (!v->is_bool()) return InvalidArgumentError(where + " must be true or false");
      *out = v->bool_value();
      return core::OkStatus();
    }
  };
  return std::visit(Visitor{v, where}, opt.target);
}

Status CheckKnownKeys(const JsonValue& o, const std::vector<std::string>& known, const std::string& where) {
  for (const auto& member : o.object()) {
    if (std::find(known.begin(), known.end(), member.first) == known.end()) {
      return InvalidArgumentError("unknown option " + core::QuoteForMessage(member.first, 100) + " in " + where +
                                  " (see --help for the names)");
    }
  }
  return core::OkStatus();
}

Status ApplyConfigJson(const JsonValue& root, const std::vector<Option>& options, ServerConfig* c) {
  if (!root.is_object()) return InvalidArgumentError("the config file is not a JSON object");
  std::vector<std::string> top = {"limits", "tenants"}, limits;
  for (const Option& o : options) {
    if (o.in_json) (o.section.empty() ? top : limits).push_back(JsonKey(o.name));
  }
  SOFTSERVE_RETURN_IF_ERROR(CheckKnownKeys(root, top, "the config"));
  const JsonValue* l = root.Find("limits");
  if (l != nullptr) {
    if (!l->is_object()) return InvalidArgumentError("'limits' must be an object");
    SOFTSERVE_RETURN_IF_ERROR(CheckKnownKeys(*l, limits, "'limits'"));
  }
  for (const Option& o : options) {
    if (!o.in_json) continue;
    if (o.section.empty()) SOFTSERVE_RETURN_IF_ERROR(ReadJson(root, o));
    else if (l != nullptr) SOFTSERVE_RETURN_IF_ERROR(ReadJson(*l, o));
  }
  if (root.Find("tenants") != nullptr) SOFTSERVE_RETURN_IF_ERROR(ParseTenants(root.Serialize(), &c->tenants));
  return core::OkStatus();
}

void AddFlag(CLI::App* app, const Option& o) {
  const std::string flag = "--" + o.name;
  std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        CLI::Option* opt = app->add_option(flag, *target, o.help)->capture_default_str();
        opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last occurrence wins
        if constexpr (std::is_same_v<T, bool>) opt->type_name("BOOL");
      },
      o.target);
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Status ReadTenantInt(const JsonValue& t, const char* key, int64_t* out) {
  const JsonValue* v = t.Find(key);
  if (v == nullptr) return core::OkStatus();
  if (!v->is_int() || v->int_value() < 0) return InvalidArgumentError(std::string("'") + key + "' must be a non-negative integer");
  *out = v->int_value();
  return core::OkStatus();
}

core::StatusOr<TenantConfig> ParseTenant(const JsonValue& t) {
  if (!t.is_object()) return InvalidArgumentError("each tenant must be an object");
  TenantConfig tc;
  SOFTSERVE_RETURN_IF_ERROR(CheckKnownKeys(t, {"name", "api_key_sha256", "admin", "max_prompts", "max_prompt_bytes",
                                               "max_inflight", "max_inflight_tokens", "max_uploads",
                                               "max_training_jobs"},
                                           "a tenant"));
  const JsonValue* name = t.Find("name");
  if (name == nullptr || !name->is_string()) return InvalidArgumentError("each tenant needs a string 'name'");
  tc.name = name->string_value();
  SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(tc.name, "tenant"));
  const JsonValue* digest = t.Find("api_key_sha256");
  tc.api_key_sha256 = digest != nullptr && digest->is_string() ? digest->string_value() : "";
  if (!IsHex64(tc.api_key_sha256)) {
    if (tc.api_key_sha256.find("REPLACE") != std::string::npos) {
      return InvalidArgumentError("tenant '" + tc.name + "': api_key_sha256 is still the example's placeholder; run "
                                  "`softserve keygen` and put the digest it prints here (give the key to the tenant)");
    }
    return InvalidArgumentError("tenant '" + tc.name + "': api_key_sha256 must be 64 lower-case hex digits "
                                "(sha256sum of the key, or the digest `softserve keygen` prints); keys are never "
                                "stored in clear");
  }
  if (const JsonValue* a = t.Find("admin"); a != nullptr) {
    if (!a->is_bool()) return InvalidArgumentError("tenant '" + tc.name + "': 'admin' must be a boolean");
    tc.admin = a->bool_value();
  }
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_prompts", &tc.max_prompts));
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_prompt_bytes", &tc.max_prompt_bytes));
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_inflight", &tc.max_inflight));
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_inflight_tokens", &tc.max_inflight_tokens));
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_uploads", &tc.max_uploads));
  SOFTSERVE_RETURN_IF_ERROR(ReadTenantInt(t, "max_training_jobs", &tc.max_training_jobs));
  return tc;
}

Status CheckConfig(const ServerConfig& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  const core::EngineLimits& e = c.engine;
  if (c.max_inputs_per_request < 1 || e.max_rows < 1 || e.max_queue < 1 || c.max_concurrent_uploads < 1 ||
      c.max_stream_buffer_messages < 1 || c.training.max_examples < 1 || c.training.max_steps < 1 ||
      c.training.max_batch_size < 1 || c.training.examples_per_slice < 1) {
    return InvalidArgumentError("limits must be at least 1");
  }
  if (!(e.max_background_time_fraction >= 0 && e.max_background_time_fraction <= 0.9)) {
    return InvalidArgumentError("--max-background-time-fraction must be in [0, 0.9]");
  }
  if (c.metrics_tenant_label != "name" && c.metrics_tenant_label != "none") {
    return InvalidArgumentError("--metrics-tenant-label must be 'name' or 'none'");
  }
  if (c.watchdog_seconds <= 0) return InvalidArgumentError("--watchdog-seconds must be > 0");
  if (c.http_threads < 1 || c.http_threads > 4096 || !(c.http_max_timeout_seconds > 0)) {
    return InvalidArgumentError("--http-threads must be in [1, 4096] and --http-max-timeout-seconds > 0");
  }
  if (c.runner.kv_cache_memory_fraction > 1 ||
      (c.runner.kv_cache_bytes > 0 && c.runner.kv_cache_memory_fraction > 0)) {
    return InvalidArgumentError(
        "--kv-cache-memory-fraction must be in (0, 1], and only one of --kv-cache-bytes and "
        "--kv-cache-memory-fraction may be given");
  }
  return core::OkStatus();
}

}  // namespace

std::string ServerConfig::UploadDir() const {
  return upload_dir.empty() ? core::JoinPath(store_dir, ".uploads") : upload_dir;
}

Status ApplyServerConfigJson(const std::string& json_text, ServerConfig* c) {
  SOFTSERVE_ASSIGN_OR_RETURN(JsonValue root, core::ParseJson(json_text));
  std::string unused;
  return ApplyConfigJson(root, Options(c, &unused), c);
}

Status ParseTenants(const std::string& json_text, std::vector<TenantConfig>* out) {
  SOFTSERVE_ASSIGN_OR_RETURN(JsonValue root, core::ParseJson(json_text));
  const JsonValue* list = root.Find("tenants");
  if (list == nullptr || !list->is_array()) return InvalidArgumentError("expected {\"tenants\": [...]}");
  for (const JsonValue& t : list->array()) {
    SOFTSERVE_ASSIGN_OR_RETURN(TenantConfig tc, ParseTenant(t));
    for (const TenantConfig& other : *out) {
      if (other.name == tc.name) return InvalidArgumentError("tenant '" + tc.name + "' is defined twice");
      if (other.api_key_sha256 == tc.api_key_sha256) {
        return InvalidArgumentError("tenants '" + other.name + "' and '" + tc.name + "' share an API key");
      }
    }
    out->push_back(std::move(tc));
  }
  return core::OkStatus();
}

core::StatusOr<ServerConfig> LoadServerConfig(int argc, char** argv, std::string* help) {
  ServerConfig c;
  std::string config_file;
  // The config file comes first (flags go on top), so find it before the real parse.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_file = argv[i + 1];
    if (a.rfind("--config=", 0) == 0) config_file = a.substr(9);
  }
  const std::vector<Option> options = Options(&c, &config_file);
  if (!config_file.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::string text, core::ReadFileToString(config_file, 16 << 20));
    SOFTSERVE_RETURN_IF_ERROR(ApplyServerConfigJson(text, &c).WithPrefix(config_file));
  }
  CLI::App app("Serves one frozen T5 to many tenants' soft prompts over gRPC.\n"
               "Options come from --config (JSON, same names) with flags on top.",
               "softserve-server");
  for (const Option& o : options) AddFlag(&app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    *help = app.help();
    return c;
  } catch (const CLI::ParseError& e) {
    return InvalidArgumentError(e.what());
  }
  if (!c.tenants_file.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::string text, core::ReadFileToString(c.tenants_file, 16 << 20));
    SOFTSERVE_RETURN_IF_ERROR(ParseTenants(text, &c.tenants).WithPrefix(c.tenants_file));
  }
  SOFTSERVE_RETURN_IF_ERROR(CheckConfig(c));
  return c;
}

}  // namespace softserve::server
