// softserve.v1.InferenceService: validates, tokenizes, resolves the caller's prompt, takes the
// caller's in-flight budget and hands requests to the engine; the engine's completion callbacks
// finish the RPCs. Requests arrive as raw bytes (raw_message.h) so that malformed ones get
// INVALID_ARGUMENT. No batching, tokenization internals or tensor code here.
#ifndef SOFTSERVE_SERVER_INFERENCE_SERVICE_H_
#define SOFTSERVE_SERVER_INFERENCE_SERVICE_H_

#include <memory>
#include <vector>

#include "server/call.h"
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
  core::TimePoint time_limit = core::NoDeadline();  // parameters.time_limit_ms after arrival
  std::vector<std::string> stop_sequences;
  std::unique_ptr<InflightLimiter::Slot> slot;
  // Per input: OK, or the input's own problem (with several inputs; a single input's problem
  // is the call's). An input with a problem has empty ids and costs nothing.
  std::vector<core::Status> input_errors;
};

// The engine request for input i of `p` (its ids are moved out). `cancel` fails it (the call is
// over); `end_early` completes it with what it has (CancelGeneration).
core::GenerationRequest EngineRequest(const std::string& tenant, PreparedGeneration* p, size_t i,
                                      const core::CancelFlag& cancel, const core::CancelFlag& end_early);

// Registers a generation call for CancelGeneration (null when the server keeps no registry).
std::unique_ptr<ActiveGenerations::Registration> RegisterGeneration(const ServiceContext& sc, const CallRecord& record,
                                                                    const core::CancelFlag& end_early);

// With several inputs, whether an error ends only its input (reported in its Generation) and
// not the call: all but the call's deadline, its cancellation and the server's shutdown.
bool EndsOnlyItsInput(const core::Status& s);

// Shared by Generate and GenerateStream. InvalidArgument (no/too many inputs, bad text, bad
// enum, a request costlier than the tenant's budget), NotFound (unknown prompt),
// FailedPrecondition (text without a tokenizer), ResourceExhausted (tenant's in-flight limits).
core::StatusOr<PreparedGeneration> PrepareGeneration(const ServiceContext& sc, const Caller& caller,
                                                     const v1::GenerateRequest& request, bool streaming,
                                                     const grpc::ServerContextBase& context);

// Looks up `ref` in `tenant`; a missing or empty ref yields null unless `required`.
// InvalidArgument for a version without a name or a negative version; NotFound otherwise.
core::StatusOr<core::PromptPtr> ResolvePrompt(const ServiceContext& sc, const std::string& tenant,
                                              const v1::PromptRef* ref, bool required);

using RawInferenceService = v1::InferenceService::WithRawCallbackMethod_Generate<
    v1::InferenceService::WithRawCallbackMethod_GenerateStream<v1::InferenceService::WithRawCallbackMethod_Score<
        v1::InferenceService::WithRawCallbackMethod_Ensemble<v1::InferenceService::WithRawCallbackMethod_Explain<
            v1::InferenceService::WithRawCallbackMethod_Tokenize<
                v1::InferenceService::WithRawCallbackMethod_CancelGeneration<v1::InferenceService::Service>>>>>>>;

class InferenceServiceImpl final : public RawInferenceService {
 public:
  explicit InferenceServiceImpl(const ServiceContext* sc) : sc_(sc) {}

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerateStream(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Ensemble(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* CancelGeneration(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;

 private:
  void DoGenerate(UnaryCall* call, grpc::CallbackServerContext* context, const v1::GenerateRequest& request,
                  v1::GenerateResponse* response);
  void DoScore(UnaryCall* call, grpc::CallbackServerContext* context, const v1::ScoreRequest& request,
               v1::ScoreResponse* response);
  void DoEnsemble(UnaryCall* call, grpc::CallbackServerContext* context, const v1::EnsembleRequest& request,
                  v1::EnsembleResponse* response);
  void DoExplain(UnaryCall* call, grpc::CallbackServerContext* context, const v1::ExplainRequest& request,
                 v1::ExplainResponse* response);
  void DoTokenize(UnaryCall* call, const v1::TokenizeRequest& request, v1::TokenizeResponse* response);

  const ServiceContext* sc_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_INFERENCE_SERVICE_H_
