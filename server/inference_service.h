// softserve.v1.InferenceService: validates, tokenizes, resolves the caller's prompt, and hands
// requests to the engine; the engine's completion callbacks finish the RPCs. No batching,
// tokenization internals or tensor code here.
#ifndef SOFTSERVE_SERVER_INFERENCE_SERVICE_H_
#define SOFTSERVE_SERVER_INFERENCE_SERVICE_H_

#include <memory>
#include <vector>

#include "server/service_context.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

// A generation request checked and converted, ready for the engine.
struct PreparedGeneration {
  core::PromptPtr prompt;
  core::DecodingParams params;
  std::vector<std::vector<int64_t>> inputs;
  core::TimePoint deadline = core::NoDeadline();
  std::unique_ptr<InflightLimiter::Slot> slot;
};

// Shared by Generate and GenerateStream. InvalidArgument (no/too many inputs, bad text),
// NotFound (unknown prompt), FailedPrecondition (text without a tokenizer), ResourceExhausted
// (tenant's in-flight limit).
core::StatusOr<PreparedGeneration> PrepareGeneration(const ServiceContext& sc, const Caller& caller,
                                                     const v1::GenerateRequest& request,
                                                     const grpc::ServerContextBase& context);

// Looks up `ref` in `tenant`; a missing or empty ref yields null unless `required`.
core::StatusOr<core::PromptPtr> ResolvePrompt(const ServiceContext& sc, const std::string& tenant,
                                              const v1::PromptRef* ref, bool required);

class InferenceServiceImpl final : public v1::InferenceService::CallbackService {
 public:
  explicit InferenceServiceImpl(const ServiceContext* sc) : sc_(sc) {}

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context, const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context, const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Ensemble(grpc::CallbackServerContext* context, const v1::EnsembleRequest* request,
                                     v1::EnsembleResponse* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* context, const v1::ExplainRequest* request,
                                    v1::ExplainResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;

 private:
  const ServiceContext* sc_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_INFERENCE_SERVICE_H_
