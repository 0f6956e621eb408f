// OpenAI's Completions and Models shapes over softserve's own API: pure translation between
// JSON bodies and softserve.v1 messages, no I/O. The HTTP gateway (http_gateway.h) sends the
// translated request through the gRPC services themselves, so authentication, validation,
// quotas, fairness, metrics and access logs are the gRPC path's; nothing here decides any of
// them. What this layer refuses is only what OpenAI's shape allows and softserve cannot honour
// (n > 1, echo, penalties, ...): such a request is refused, never served differently from what
// it asked.
//
// The mapping (docs/API.md, "HTTP API"):
//   model        "name" or "name@version" of one of the caller's prompts; kBaseModel for none
//   prompt       a string, an array of strings, an array of token ids or an array of such arrays;
//                one choice per element, in order
//   max_tokens   max_new_tokens (default 16, as OpenAI's)
//   temperature  0: greedy; > 0: sampling at that temperature (default 1, as OpenAI's)
//   top_p, seed  sampling; without a seed, a random one (OpenAI's semantics); with one, the
//                tokens are those the gRPC API returns for the same seed
//   stop         a string or array of strings: stop sequences (the text ends before the first)
//   logprobs     0: each token's text and log-probability; n > 0: also the n most likely
//                tokens at each step ({text: log-probability}, n up to max_top_logprobs)
//   stream       server-sent events in OpenAI's chunk format, ending with "data: [DONE]"
//   extensions   top_k, min_tokens, truncate_prompt_tokens, repetition_penalty (vLLM's names),
//                time_limit_ms
//   finish       "stop" (eos or a stop sequence), "length", "time_limit", or "error" with the
//                choice's own "error" object when that prompt failed alone (the others complete)
#ifndef SOFTSERVE_SERVER_OPENAI_API_H_
#define SOFTSERVE_SERVER_OPENAI_API_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "core/common/status.h"
#include "softserve/v1/softserve.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

// The `model` that names plain T5, no soft prompt ('@' cannot begin a prompt name).
inline constexpr const char* kBaseModel = "@base";

struct CompletionCall {
  v1::GenerateRequest request;
  std::string model;  // as the client named it, echoed in responses
  int choices = 0;    // inputs
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  bool top_logprobs = false;  // logprobs > 0: alternatives with each token
};

// Parses a POST /v1/completions body. InvalidArgument naming the field for malformed JSON, a
// wrong type, an unknown field or a value softserve cannot honour. `random_seed` is used when
// sampling without a seed.
core::StatusOr<CompletionCall> ParseCompletionRequest(std::string_view body, uint64_t random_seed);

// Turns one call's GenerateStream messages into OpenAI's responses: chunks as they come
// (streaming) or the whole response at the end. Not thread-safe.
class CompletionBuilder {
 public:
  CompletionBuilder(const CompletionCall& call, std::string id, int64_t created_unix);

  // Takes one streamed message; returns the chunk's JSON to send now (streaming).
  std::string Take(const v1::GenerateStreamResponse& message);
  // The last chunk when stream_options.include_usage was set: no choices, the usage.
  std::string UsageChunk() const;
  // The non-streaming response, after every message was taken.
  std::string Response() const;

 private:
  struct Choice {
    std::string text;
    std::vector<std::string> tokens;
    std::vector<float> logprobs;
    std::vector<int64_t> offsets;
    std::vector<nlohmann::json> top;  // per token, when top_logprobs
    nlohmann::json error;             // this prompt's own error, when it failed alone
    std::string finish_reason;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
  };
  nlohmann::json envelope_;  // id, object, created, model: the start of every chunk and response

  const CompletionCall& call_;
  std::vector<Choice> choices_;
};

// GET /v1/models: the base model, then each of the caller's prompts as "name@version" and, for
// its latest version, "name".
std::string ModelsResponse(const std::vector<v1::Prompt>& prompts, int64_t created_unix);

// POST /v1/completions/{request_id}/cancel's answer: {"id", "object": "completion.cancellation",
// "calls"}; the completion itself then ends with finish_reason "cancelled".
std::string CancelResponse(const std::string& request_id, int64_t calls);

// HTTP status for a gRPC status: 400 invalid, 401 unauthenticated, 403 permission, 404 not
// found, 409 exists, 429 resource exhausted, 499 cancelled, 503 unavailable, 504 deadline,
// 500 otherwise.
int HttpStatusFor(grpc::StatusCode code);
// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
std::string ErrorBody(grpc::StatusCode code, const std::string& message);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_OPENAI_API_H_
