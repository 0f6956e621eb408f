#include "server/server_config.h"

#include <algorithm>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/prompts/prompt_names.h"
#include "tools/flags.h"

namespace softserve::server {
namespace {

using core::InvalidArgumentError;
using core::JsonValue;
using core::Status;

Status ReadString(const JsonValue& o, const char* key, std::string* out) {
  const JsonValue* v = o.Find(key);
  if (v == nullptr) return core::OkStatus();
  if (!v->is_string()) return InvalidArgumentError(std::string("'") + key + "' must be a string");
  *out = v->string_value();
  return core::OkStatus();
}

Status ReadInt(const JsonValue& o, const char* key, int64_t* out) {
  const JsonValue* v = o.Find(key);
  if (v == nullptr) return core::OkStatus();
  if (!v->is_int() || v->int_value() < 0) return InvalidArgumentError(std::string("'") + key + "' must be a non-negative integer");
  *out = v->int_value();
  return core::OkStatus();
}

Status ReadDouble(const JsonValue& o, const char* key, double* out) {
  const JsonValue* v = o.Find(key);
  if (v == nullptr) return core::OkStatus();
  if (!v->is_number() || v->number() < 0) return InvalidArgumentError(std::string("'") + key + "' must be a non-negative number");
  *out = v->number();
  return core::OkStatus();
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status CheckKnownKeys(const JsonValue& o, const std::vector<std::string>& known, const std::string& where) {
  for (const auto& member : o.object()) {
    if (std::find(known.begin(), known.end(), member.first) == known.end()) {
      return InvalidArgumentError("unknown option '" + member.first + "' in " + where + " (see --help for the names)");
    }
  }
  return core::OkStatus();
}

Status ApplyConfigJson(const JsonValue& root, ServerConfig* c) {
  if (!root.is_object()) return InvalidArgumentError("the config file is not a JSON object");
  SOFTSERVE_RETURN_IF_ERROR(CheckKnownKeys(
      root, {"listen", "metrics_listen", "model_dir", "tokenizer", "device", "dtype", "threads", "store_dir",
             "drain_seconds", "log_level", "tenants_file", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
             "limits", "tenants"},
      "the config"));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "listen", &c->listen));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "metrics_listen", &c->metrics_listen));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "model_dir", &c->model_dir));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "tokenizer", &c->tokenizer));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "device", &c->device));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "dtype", &c->dtype));
  SOFTSERVE_RETURN_IF_ERROR(ReadInt(root, "threads", &c->threads));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "store_dir", &c->store_dir));
  SOFTSERVE_RETURN_IF_ERROR(ReadDouble(root, "drain_seconds", &c->drain_seconds));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "log_level", &c->log_level));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "tenants_file", &c->tenants_file));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "tls_cert_file", &c->tls_cert_file));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "tls_key_file", &c->tls_key_file));
  SOFTSERVE_RETURN_IF_ERROR(ReadString(root, "tls_client_ca_file", &c->tls_client_ca_file));
  if (const JsonValue* l = root.Find("limits"); l != nullptr) {
    if (!l->is_object()) return InvalidArgumentError("'limits' must be an object");
    SOFTSERVE_RETURN_IF_ERROR(CheckKnownKeys(
        *l, {"max_batch_rows", "max_tokens_in_flight", "max_prefill_tokens", "max_queue", "max_input_tokens",
             "max_prompt_rows", "max_new_tokens", "max_beams", "max_score_targets", "max_ensemble_prompts",
             "max_inputs_per_request", "max_upload_bytes", "max_message_bytes"},
        "'limits'"));
    core::EngineLimits& e = c->engine;
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_batch_rows", &e.max_rows));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_tokens_in_flight", &e.max_tokens_in_flight));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_prefill_tokens", &e.max_prefill_tokens));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_queue", &e.max_queue));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_input_tokens", &e.max_input_tokens));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_prompt_rows", &e.max_prompt_rows));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_new_tokens", &e.max_new_tokens));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_beams", &e.max_beams));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_score_targets", &e.max_score_targets));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_ensemble_prompts", &e.max_ensemble_prompts));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_inputs_per_request", &c->max_inputs_per_request));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_upload_bytes", &c->max_upload_bytes));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(*l, "max_message_bytes", &c->max_message_bytes));
  }
  if (root.Find("tenants") != nullptr) SOFTSERVE_RETURN_IF_ERROR(ParseTenants(root.Serialize(), &c->tenants));
  return core::OkStatus();
}

}  // namespace

Status ParseTenants(const std::string& json_text, std::vector<TenantConfig>* out) {
  SOFTSERVE_ASSIGN_OR_RETURN(JsonValue root, core::ParseJson(json_text));
  const JsonValue* list = root.Find("tenants");
  if (list == nullptr || !list->is_array()) return InvalidArgumentError("expected {\"tenants\": [...]}");
  for (const JsonValue& t : list->array()) {
    if (!t.is_object()) return InvalidArgumentError("each tenant must be an object");
    TenantConfig tc;
    SOFTSERVE_RETURN_IF_ERROR(ReadString(t, "name", &tc.name));
    SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(tc.name, "tenant"));
    SOFTSERVE_RETURN_IF_ERROR(ReadString(t, "api_key_sha256", &tc.api_key_sha256));
    if (!IsHex64(tc.api_key_sha256)) {
      return InvalidArgumentError("tenant '" + tc.name + "': api_key_sha256 must be 64 lower-case hex digits "
                                  "(sha256sum of the key); keys are never stored in clear");
    }
    if (const JsonValue* a = t.Find("admin"); a != nullptr) {
      if (!a->is_bool()) return InvalidArgumentError("tenant '" + tc.name + "': 'admin' must be a boolean");
      tc.admin = a->bool_value();
    }
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(t, "max_prompts", &tc.max_prompts));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(t, "max_prompt_bytes", &tc.max_prompt_bytes));
    SOFTSERVE_RETURN_IF_ERROR(ReadInt(t, "max_inflight", &tc.max_inflight));
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
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") config_file = argv[i + 1];
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--config=", 0) == 0) config_file = a.substr(9);
  }
  if (!config_file.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::string text, core::ReadFileToString(config_file, 16 << 20));
    auto json = core::ParseJson(text);
    if (!json.ok()) return json.status().WithPrefix(config_file);
    SOFTSERVE_RETURN_IF_ERROR(ApplyConfigJson(*json, &c).WithPrefix(config_file));
  }
  core::EngineLimits& e = c.engine;
  tools::FlagParser flags("softserve-server",
                          "Serves one frozen T5 to many tenants' soft prompts over gRPC.\n"
                          "Options come from --config (JSON, same names) with flags on top.");
  flags.AddString("config", &config_file, "JSON config file");
  flags.AddString("listen", &c.listen, "gRPC address (port 0 picks a free port)");
  flags.AddString("metrics-listen", &c.metrics_listen, "Prometheus /metrics address; empty disables");
  flags.AddString("model-dir", &c.model_dir, "Hugging Face T5 checkpoint directory");
  flags.AddString("tokenizer", &c.tokenizer, "SentencePiece model (default <model-dir>/spiece.model)");
  flags.AddString("device", &c.device, "cpu, cuda or cuda:N");
  flags.AddString("dtype", &c.dtype, "float32 or bfloat16");
  flags.AddInt("threads", &c.threads, "CPU threads for the model (0 = one per core)");
  flags.AddString("store-dir", &c.store_dir, "prompt store directory");
  flags.AddInt("max-batch-rows", &e.max_rows, "decode rows per step (beams count each)");
  flags.AddInt("max-tokens-in-flight", &e.max_tokens_in_flight, "KV tokens of all running rows");
  flags.AddInt("max-prefill-tokens", &e.max_prefill_tokens, "encoder tokens admitted per step");
  flags.AddInt("max-queue", &e.max_queue, "waiting requests before RESOURCE_EXHAUSTED");
  flags.AddInt("max-input-tokens", &e.max_input_tokens, "tokens per input");
  flags.AddInt("max-prompt-rows", &e.max_prompt_rows, "rows per soft prompt");
  flags.AddInt("max-new-tokens", &e.max_new_tokens, "tokens generated per input");
  flags.AddInt("max-beams", &e.max_beams, "beam width");
  flags.AddInt("max-score-targets", &e.max_score_targets, "candidates per Score request");
  flags.AddInt("max-ensemble-prompts", &e.max_ensemble_prompts, "prompts per Ensemble request");
  flags.AddInt("max-inputs-per-request", &c.max_inputs_per_request, "inputs per Generate request");
  flags.AddInt("max-upload-bytes", &c.max_upload_bytes, "bytes per prompt upload");
  flags.AddInt("max-message-bytes", &c.max_message_bytes, "gRPC message size limit");
  flags.AddDouble("drain-seconds", &c.drain_seconds, "SIGTERM: time running requests get to finish");
  flags.AddString("log-level", &c.log_level, "trace, debug, info, warn or error (debug: one line per request)");
  flags.AddString("tenants-file", &c.tenants_file, "JSON {\"tenants\": [...]} with SHA-256 key digests");
  flags.AddString("dev-api-key", &c.dev_api_key, "DEVELOPMENT ONLY: tenant 'default' (admin) with this key");
  flags.AddString("tls-cert-file", &c.tls_cert_file, "PEM server certificate (enables TLS)");
  flags.AddString("tls-key-file", &c.tls_key_file, "PEM server private key");
  flags.AddString("tls-client-ca-file", &c.tls_client_ca_file, "PEM CA to require client certificates (mTLS)");
  flags.AddString("port-file", &c.port_file, "write the bound gRPC port here once listening");
  flags.AddString("metrics-port-file", &c.metrics_port_file, "write the bound metrics port here");
  bool want_help = false;
  SOFTSERVE_RETURN_IF_ERROR(flags.Parse(argc, argv, &want_help));
  if (want_help) {
    *help = flags.Usage();
    return c;
  }
  if (!c.tenants_file.empty()) {
    SOFTSERVE_ASSIGN_OR_RETURN(std::string text, core::ReadFileToString(c.tenants_file, 16 << 20));
    SOFTSERVE_RETURN_IF_ERROR(ParseTenants(text, &c.tenants).WithPrefix(c.tenants_file));
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  if (c.max_inputs_per_request < 1 || e.max_rows < 1 || e.max_queue < 1) {
    return InvalidArgumentError("limits must be at least 1");
  }
  return c;
}

}  // namespace softserve::server
