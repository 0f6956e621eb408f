// softserve's C++ client library: typed calls to every RPC, with a deadline per call, the API
// key attached, and retries of UNAVAILABLE (the server restarting or draining) and of a
// server's CANCELLED (a call caught by a replica's shutdown) with backoff.
// Depends only on the generated protos and gRPC. Thread-safe: one Client may be shared.
#ifndef SOFTSERVE_CLIENT_SOFTSERVE_CLIENT_H_
#define SOFTSERVE_CLIENT_SOFTSERVE_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::client {

namespace v1 = ::softserve::v1;

// The outcome of a call: status, and the response when status.ok().
template <typename T>
struct Result {
  grpc::Status status;
  T value;
  bool ok() const { return status.ok(); }
};

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  std::string api_key;
  std::string tls_root_ca_file;  // non-empty: TLS with this CA
  std::string tls_client_cert_file, tls_client_key_file;  // mTLS
  std::chrono::milliseconds timeout{60000};  // per call
  std::string request_id;  // non-empty: sent as x-request-id on every call (CancelGeneration names it)
  // gRPC's retry policy (the channel's service config): reads and inference are attempted up
  // to max_attempts times (at most 5) on UNAVAILABLE, and on CANCELLED from the server (gRPC's
  // answer to a call that arrives as the server shuts down), with exponential backoff; uploads and
  // deletes never are (an attempt the server acted on must not run twice).
  int max_attempts = 3;
  std::chrono::milliseconds initial_backoff{200};
};

// What a prompt upload sends.
struct PromptUpload {
  std::string name;
  v1::PromptFormat format = v1::PROMPT_FORMAT_RAW;
  std::string bytes;        // the safetensors file (adapter_model.safetensors for PEFT)
  std::string peft_config;  // PEFT: adapter_config.json
  std::string tenant;       // admin keys only
  size_t chunk_bytes = 1 << 20;
};

// Reads a prompt from disk the way users keep them: a PEFT adapter directory, a residual
// checkpoint (safetensors with mlp.* tensors) or a raw matrix. format AUTO detects which.
// Returns INVALID_ARGUMENT / NOT_FOUND with a message on unreadable input.
grpc::Status ReadPromptUpload(const std::string& path, const std::string& name, const std::string& format,
                              PromptUpload* out);

// Lower-case hex SHA-256 (the upload header's digest; `softserve keygen`'s key digest).
std::string HexSha256(const std::string& bytes);

// The channel's service config: gRPC's retry policy for the methods that may be retried.
std::string RetryServiceConfig(const ClientOptions& options);

class Client {
 public:
  // Returns a client or an error status for unreadable TLS files.
  static Result<std::shared_ptr<Client>> Connect(const ClientOptions& options);

  // `progress(sent, total)` is called after each chunk.
  Result<v1::Prompt> UploadPrompt(const PromptUpload& upload,
                                  const std::function<void(size_t, size_t)>& progress = nullptr);
  Result<v1::Prompt> GetPrompt(const v1::GetPromptRequest& request);
  Result<v1::ListPromptsResponse> ListPrompts(const v1::ListPromptsRequest& request);
  Result<v1::DeletePromptResponse> DeletePrompt(const v1::DeletePromptRequest& request);
  Result<v1::GenerateResponse> Generate(const v1::GenerateRequest& request);
  // Calls on_message for each streamed message; returns the final status.
  grpc::Status GenerateStream(const v1::GenerateRequest& request,
                              const std::function<void(const v1::GenerateStreamResponse&)>& on_message,
                              grpc::ClientContext* context = nullptr);
  Result<v1::ScoreResponse> Score(const v1::ScoreRequest& request);
  Result<v1::EnsembleResponse> Ensemble(const v1::EnsembleRequest& request);
  Result<v1::ExplainResponse> Explain(const v1::ExplainRequest& request);
  Result<v1::TokenizeResponse> Tokenize(const v1::TokenizeRequest& request);
  Result<v1::CancelGenerationResponse> CancelGeneration(const v1::CancelGenerationRequest& request);
  // Prompt training (TrainingService).
  Result<v1::TrainingJob> TrainPrompt(const v1::TrainPromptRequest& request);
  Result<v1::TrainingJob> GetTrainingJob(const v1::TrainingJobRef& request);
  Result<v1::TrainingJob> CancelTrainingJob(const v1::TrainingJobRef& request);
  Result<v1::ListTrainingJobsResponse> ListTrainingJobs(const v1::ListTrainingJobsRequest& request);
  // Calls on_update with each state the server sends until the job ends; returns the final
  // status. `timeout` replaces the per-call one (a job may run for long).
  grpc::Status WatchTrainingJob(const v1::TrainingJobRef& request,
                                const std::function<void(const v1::TrainingJob&)>& on_update,
                                std::chrono::milliseconds timeout);
  Result<v1::ModelInfo> GetModelInfo();
  // grpc.health.v1.Health/Check (no API key needed). service "" = overall readiness.
  Result<::grpc::health::v1::HealthCheckResponse> Health(const std::string& service = "");

  const ClientOptions& options() const { return options_; }

 private:
  explicit Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel);
  void Prepare(grpc::ClientContext* context) const;
  // Runs `attempt` once with a prepared context (retries are the channel's retry policy).
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& attempt) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PromptService::Stub> prompts_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
  std::unique_ptr<v1::ModelService::Stub> model_;
  std::unique_ptr<v1::TrainingService::Stub> training_;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health_;
};

}  // namespace softserve::client

#endif  // SOFTSERVE_CLIENT_SOFTSERVE_CLIENT_H_
