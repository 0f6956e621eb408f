#include "server/openai_api.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace softserve::server {
namespace {

using nlohmann::json;

core::Status Invalid(const std::string& field, const std::string& what) {
  return core::InvalidArgumentError("'" + field + "' " + what);
}

// Fields OpenAI defines that softserve cannot honour unless they hold their neutral value.
core::Status CheckNeutral(const json& body) {
  struct Neutral {
    const char* field;
    json value;
    const char* why;
  };
  const Neutral neutral[] = {
      {"n", 1, "must be 1: one choice per prompt (send the prompt several times with different seeds)"},
      {"best_of", 1, "must be 1"},
      {"echo", false, "must be false: the prompt is not part of an encoder-decoder's output"},
      {"presence_penalty", 0, "must be 0: presence penalties are not supported"},
      {"frequency_penalty", 0, "must be 0: frequency penalties are not supported"},
      {"suffix", "", "is not supported (no insertion mode)"},
  };
  for (const Neutral& n : neutral) {
    auto it = body.find(n.field);
    if (it == body.end() || it->is_null() || *it == n.value) continue;
    return Invalid(n.field, n.why);
  }
  if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null() && !(it->is_object() && it->empty())) {
    return Invalid("logit_bias", "is not supported");
  }
  return core::OkStatus();
}

core::Status ReadModel(const json& body, CompletionCall* call) {
  auto it = body.find("model");
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Invalid("model", std::string("is required: a prompt's name, name@version, or \"") + kBaseModel +
                                "\" for the model without a prompt");
  }
  call->model = it->get<std::string>();
  if (call->model == kBaseModel) return core::OkStatus();
  const size_t at = call->model.find('@');
  v1::PromptRef* ref = call->request.mutable_prompt();
  ref->set_name(call->model.substr(0, at));
  if (at == std::string::npos) return core::OkStatus();
  const std::string version = call->model.substr(at + 1);
  int64_t v = 0;
  for (char c : version) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || v > (INT64_MAX - 9) / 10) v = -1;
    if (v < 0) break;
    v = v * 10 + (c - '0');
  }
  if (version.empty() || v < 1) return Invalid("model", "must be name@version with a version >= 1: '" + call->model + "'");
  ref->set_version(v);
  return core::OkStatus();
}

core::Status AddIds(const json& ids, v1::GenerateRequest* request) {
  v1::TokenIds* out = request->add_inputs()->mutable_ids();
  for (const json& id : ids) {
    if (!id.is_number_integer()) return Invalid("prompt", "token arrays must hold integers");
    out->add_ids(id.get<int64_t>());
  }
  return core::OkStatus();
}

core::Status ReadPrompt(const json& body, CompletionCall* call) {
  auto it = body.find("prompt");
  const char* shape = "must be a string, an array of strings, an array of token ids or an array of such arrays";
  if (it == body.end() || it->is_null()) return Invalid("prompt", "is required");
  v1::GenerateRequest& r = call->request;
  if (it->is_string()) {
    r.add_inputs()->set_text(it->get<std::string>());
  } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    SOFTSERVE_RETURN_IF_ERROR(AddIds(*it, &r));
  } else if (it->is_array() && !it->empty()) {
    for (const json& p : *it) {
      if (p.is_string()) {
        r.add_inputs()->set_text(p.get<std::string>());
      } else if (p.is_array()) {
        SOFTSERVE_RETURN_IF_ERROR(AddIds(p, &r));
      } else {
        return Invalid("prompt", shape);
      }
    }
  } else {
    return Invalid("prompt", shape);
  }
  call->choices = r.inputs_size();
  return core::OkStatus();
}

// Reads an optional number field into *out; false with *status set on a wrong type.
template <typename T>
bool Number(const json& body, const char* field, bool integer, T* out, core::Status* status) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return false;
  if (integer ? !it->is_number_integer() : !it->is_number()) {
    *status = Invalid(field, integer ? "must be an integer" : "must be a number");
    return false;
  }
  *out = it->get<T>();
  return true;
}

core::Status ReadDecoding(const json& body, uint64_t random_seed, CompletionCall* call) {
  v1::DecodingParameters* d = call->request.mutable_parameters();
  core::Status s;
  int64_t max_tokens = 16, min_tokens = 0, top_k = 0, truncate = 0, logprobs = -1, time_limit_ms = 0;
  double temperature = 1.0, top_p = 1.0;
  Number(body, "max_tokens", true, &max_tokens, &s);
  Number(body, "min_tokens", true, &min_tokens, &s);
  Number(body, "top_k", true, &top_k, &s);
  Number(body, "truncate_prompt_tokens", true, &truncate, &s);
  const bool has_logprobs = Number(body, "logprobs", true, &logprobs, &s);
  Number(body, "time_limit_ms", true, &time_limit_ms, &s);
  Number(body, "temperature", false, &temperature, &s);
  const bool has_top_p = Number(body, "top_p", false, &top_p, &s);
  double repetition_penalty = 1.0;
  if (Number(body, "repetition_penalty", false, &repetition_penalty, &s)) d->set_repetition_penalty(repetition_penalty);
  int64_t seed = 0;
  const bool has_seed = Number(body, "seed", true, &seed, &s);
  if (!s.ok()) return s;
  if (max_tokens < 1 || max_tokens > INT32_MAX) return Invalid("max_tokens", "must be >= 1");
  if (min_tokens < 0 || min_tokens > max_tokens) return Invalid("min_tokens", "must be in [0, max_tokens]");
  if (top_k < 0 || top_k > INT32_MAX) return Invalid("top_k", "must be >= 0 (0 = off)");
  if (truncate < 0 || truncate > INT32_MAX) return Invalid("truncate_prompt_tokens", "must be >= 0 (0 = off)");
  if (temperature < 0) return Invalid("temperature", "must be >= 0 (0 = greedy)");
  if (time_limit_ms < 0 || time_limit_ms > INT32_MAX) return Invalid("time_limit_ms", "must be >= 0 (0 = none)");
  if (has_seed && seed < 0) return Invalid("seed", "must be >= 0");
  if (has_logprobs && (logprobs < 0 || logprobs > INT32_MAX)) {
    return Invalid("logprobs", "must be >= 0: 0 for each token's log-probability, n for also its n most likely alternatives");
  }
  call->logprobs = logprobs >= 0;
  call->top_logprobs = call->logprobs && logprobs > 0;
  d->set_top_logprobs(static_cast<int32_t>(std::max<int64_t>(logprobs, 0)));
  d->set_max_new_tokens(static_cast<int32_t>(max_tokens));
  d->set_min_new_tokens(static_cast<int32_t>(min_tokens));
  d->set_truncate_input_tokens(static_cast<int32_t>(truncate));
  d->set_return_logprobs(call->logprobs);
  d->set_time_limit_ms(static_cast<int32_t>(time_limit_ms));
  if (temperature == 0) {
    if (top_k != 0) return Invalid("top_k", "needs sampling (temperature > 0)");
    d->set_mode(v1::DECODING_MODE_GREEDY);
    return core::OkStatus();
  }
  d->set_mode(v1::DECODING_MODE_SAMPLE);
  d->set_temperature(temperature);
  d->set_top_k(static_cast<int32_t>(top_k));
  if (has_top_p) d->set_top_p(top_p);
  d->set_seed(has_seed ? static_cast<uint64_t>(seed) : random_seed);
  return core::OkStatus();
}

// "stop": a string or an array of strings (the server checks their number and lengths).
core::Status ReadStop(const json& body, v1::DecodingParameters* d) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return core::OkStatus();
  if (it->is_string()) {
    d->add_stop_sequences(it->get<std::string>());
    return core::OkStatus();
  }
  if (!it->is_array()) return Invalid("stop", "must be a string or an array of strings");
  for (const json& s : *it) {
    if (!s.is_string()) return Invalid("stop", "must be a string or an array of strings");
    d->add_stop_sequences(s.get<std::string>());
  }
  return core::OkStatus();
}

core::Status ReadStreaming(const json& body, CompletionCall* call) {
  auto it = body.find("stream");
  if (it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("stream", "must be true or false");
    call->stream = it->get<bool>();
  }
  auto opts = body.find("stream_options");
  if (opts == body.end() || opts->is_null()) return core::OkStatus();
  if (!call->stream) return Invalid("stream_options", "needs \"stream\": true");
  if (!opts->is_object()) return Invalid("stream_options", "must be an object");
  for (auto& [key, value] : opts->items()) {
    if (key != "include_usage") return Invalid("stream_options." + key, "is not a known option");
    if (!value.is_boolean()) return Invalid("stream_options.include_usage", "must be true or false");
    call->include_usage = value.get<bool>();
  }
  return core::OkStatus();
}

const char* FinishName(v1::FinishReason r) {
  switch (r) {
    case v1::FINISH_REASON_EOS: return "stop";
    case v1::FINISH_REASON_MAX_TOKENS: return "length";
    case v1::FINISH_REASON_TIME_LIMIT: return "time_limit";
    case v1::FINISH_REASON_CANCELLED: return "cancelled";
    case v1::FINISH_REASON_ERROR: return "error";
    default: return "stop";
  }
}

}  // namespace

core::StatusOr<CompletionCall> ParseCompletionRequest(std::string_view body_text, uint64_t random_seed) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return core::InvalidArgumentError("the body is not valid JSON");
  if (!body.is_object()) return core::InvalidArgumentError("the body must be a JSON object");
  static const std::set<std::string> known = {
      "model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "logprobs", "echo", "stream",
      "stream_options", "user", "n", "best_of", "presence_penalty", "frequency_penalty", "logit_bias", "suffix",
      "top_k", "min_tokens", "truncate_prompt_tokens", "time_limit_ms", "repetition_penalty"};
  for (auto& [key, value] : body.items()) {
    if (known.count(key) == 0) return Invalid(key, "is not a field softserve knows; leave it out");
  }
  if (auto u = body.find("user"); u != body.end() && !u->is_null() && !u->is_string()) {
    return Invalid("user", "must be a string");
  }
  CompletionCall call;
  SOFTSERVE_RETURN_IF_ERROR(CheckNeutral(body));
  SOFTSERVE_RETURN_IF_ERROR(ReadModel(body, &call));
  SOFTSERVE_RETURN_IF_ERROR(ReadPrompt(body, &call));
  SOFTSERVE_RETURN_IF_ERROR(ReadDecoding(body, random_seed, &call));
  SOFTSERVE_RETURN_IF_ERROR(ReadStop(body, call.request.mutable_parameters()));
  SOFTSERVE_RETURN_IF_ERROR(ReadStreaming(body, &call));
  return call;
}

CompletionBuilder::CompletionBuilder(const CompletionCall& call, std::string id, int64_t created_unix)
    : envelope_({{"id", std::move(id)}, {"object", "text_completion"}, {"created", created_unix}, {"model", call.model}}),
      call_(call),
      choices_(static_cast<size_t>(call.choices)) {}

namespace {

json LogprobsJson(const std::vector<std::string>& tokens, const std::vector<float>& logprobs,
                  const std::vector<int64_t>& offsets, const json& top) {
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

// OpenAI's shape of one step's alternatives: {token text: log-probability}.
json TopJson(const v1::TopLogprobs& top) {
  json step = json::object();
  for (int i = 0; i < top.token_ids_size() && i < top.logprobs_size(); ++i) {
    // Without a tokenizer a token has no text: its id stands in.
    const std::string text = i < top.tokens_size() && !top.tokens(i).empty() ? top.tokens(i) : std::to_string(top.token_ids(i));
    if (!step.contains(text)) step[text] = top.logprobs(i);
  }
  return step;
}

json ChunkJson(const json& envelope, int index, const std::string& text, json logprobs, json finish,
               bool with_usage) {
  json chunk = envelope;
  chunk["choices"] = json::array(
      {{{"index", index}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}}});
  if (with_usage) chunk["usage"] = nullptr;
  return chunk;
}

}  // namespace

std::string CompletionBuilder::Take(const v1::GenerateStreamResponse& m) {
  if (m.input_index() < 0 || m.input_index() >= static_cast<int>(choices_.size())) return std::string();
  Choice& c = choices_[static_cast<size_t>(m.input_index())];
  if (m.has_final()) {
    const v1::Generation& g = m.final();
    // The deltas concatenate to the final text; send whatever they have not yet carried.
    std::string rest = g.text().compare(0, c.text.size(), c.text) == 0 ? g.text().substr(c.text.size()) : "";
    c.text += rest;
    c.finish_reason = FinishName(g.finish_reason());
    c.prompt_tokens = g.input_tokens();
    c.completion_tokens = g.output_ids_size();
    json chunk = ChunkJson(envelope_, m.input_index(), rest, nullptr, c.finish_reason, call_.include_usage);
    if (g.finish_reason() == v1::FINISH_REASON_ERROR) {
      // This prompt failed on its own (the others complete): an extension of OpenAI's choice.
      c.error = json::parse(ErrorBody(static_cast<grpc::StatusCode>(g.error_code()), g.error_message()))["error"];
      chunk["choices"][0]["error"] = c.error;
    }
    return chunk.dump();
  }
  json logprobs = nullptr;
  if (call_.logprobs) {
    json top = call_.top_logprobs ? json::array({TopJson(m.top_logprobs())}) : json(nullptr);
    logprobs = LogprobsJson({m.text_delta()}, {m.logprob()}, {static_cast<int64_t>(c.text.size())}, top);
    c.tokens.push_back(m.text_delta());
    c.logprobs.push_back(m.logprob());
    c.offsets.push_back(static_cast<int64_t>(c.text.size()));
    if (call_.top_logprobs) c.top.push_back(top[0]);
  }
  c.text += m.text_delta();
  return ChunkJson(envelope_, m.input_index(), m.text_delta(), std::move(logprobs), nullptr, call_.include_usage)
      .dump();
}

namespace {

json UsageJson(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

}  // namespace

std::string CompletionBuilder::UsageChunk() const {
  int64_t prompt = 0, completion = 0;
  for (const Choice& c : choices_) prompt += c.prompt_tokens, completion += c.completion_tokens;
  json chunk = envelope_;
  chunk["choices"] = json::array();
  chunk["usage"] = UsageJson(prompt, completion);
  return chunk.dump();
}

std::string CompletionBuilder::Response() const {
  json r = envelope_;
  r["choices"] = json::array();
  int64_t prompt = 0, completion = 0;
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    r["choices"].push_back({{"index", i},
                            {"text", c.text},
                            {"logprobs", call_.logprobs ? LogprobsJson(c.tokens, c.logprobs, c.offsets,
                                                                       call_.top_logprobs ? json(c.top) : json(nullptr))
                                                        : json(nullptr)},
                            {"finish_reason", c.finish_reason}});
    if (!c.error.is_null()) r["choices"].back()["error"] = c.error;
    prompt += c.prompt_tokens;
    completion += c.completion_tokens;
  }
  r["usage"] = UsageJson(prompt, completion);
  return r.dump();
}

std::string ModelsResponse(const std::vector<v1::Prompt>& prompts, int64_t created_unix) {
  json data = json::array();
  data.push_back({{"id", kBaseModel}, {"object", "model"}, {"created", created_unix}, {"owned_by", "softserve"}});
  std::vector<const v1::Prompt*> sorted;  // by name, newest version first
  for (const v1::Prompt& p : prompts) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(), [](const v1::Prompt* a, const v1::Prompt* b) {
    return a->name() != b->name() ? a->name() < b->name() : a->version() > b->version();
  });
  std::set<std::string> named;  // the newest version also answers to the bare name
  for (const v1::Prompt* it : sorted) {
    const int64_t created = it->created_unix_ms() / 1000;
    if (named.insert(it->name()).second) {
      data.push_back({{"id", it->name()}, {"object", "model"}, {"created", created}, {"owned_by", it->tenant()}});
    }
    data.push_back({{"id", it->name() + "@" + std::to_string(it->version())},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", it->tenant()}});
  }
  return json({{"object", "list"}, {"data", std::move(data)}}).dump();
}

std::string CancelResponse(const std::string& request_id, int64_t calls) {
  return json({{"id", request_id}, {"object", "completion.cancellation"}, {"calls", calls}}).dump();
}

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS: return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

namespace {

const char* ErrorType(int http) {
  switch (http) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    case 504: return "timeout_error";
    default: return "server_error";
  }
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const names[] = {"ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded",
                                      "not_found", "already_exists", "permission_denied", "resource_exhausted",
                                      "failed_precondition", "aborted", "out_of_range", "unimplemented",
                                      "internal", "unavailable", "data_loss", "unauthenticated"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? names[i] : "unknown";
}

}  // namespace

std::string ErrorBody(grpc::StatusCode code, const std::string& message) {
  json e = {{"message", message}, {"type", ErrorType(HttpStatusFor(code))}, {"param", nullptr}, {"code", CodeName(code)}};
  return json({{"error", std::move(e)}}).dump();
}

}  // namespace softserve::server
