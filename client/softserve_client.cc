#include "client/softserve_client.h"

#include <openssl/sha.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace softserve::client {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The safetensors JSON header, or empty if the bytes are not safetensors.
std::string SafetensorsHeader(const std::string& bytes) {
  if (bytes.size() < 8) return "";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > bytes.size() - 8) return "";
  return bytes.substr(8, n);
}

}  // namespace

std::string HexSha256(const std::string& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::string RetryServiceConfig(const ClientOptions& options) {
  const double backoff = std::chrono::duration<double>(options.initial_backoff).count();
  char policy[256];
  std::snprintf(policy, sizeof(policy),
                R"("retryPolicy": {"maxAttempts": %d, "initialBackoff": "%.3fs", "maxBackoff": "%.3fs", )"
                R"("backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"]})",
                std::min(options.max_attempts, 5), backoff, backoff * 8);
  // CANCELLED too: gRPC's server answers it for a call that reached it as Shutdown began and no
  // handler had taken yet (grpc/grpc#41785), e.g. a replica leaving a load balancer; a call this
  // client cancels itself is never retried. Uploads and deletes are not retried: an attempt the
  // server acted on must not run twice.
  return std::string(R"({"methodConfig": [{"name": [)"
                     R"({"service": "softserve.v1.InferenceService"}, {"service": "softserve.v1.ModelService"}, )"
                     R"({"service": "softserve.v1.PromptService", "method": "GetPrompt"}, )"
                     R"({"service": "softserve.v1.PromptService", "method": "ListPrompts"}], )") +
         policy + "}]}";
}

grpc::Status ReadPromptUpload(const std::string& path, const std::string& name, const std::string& format,
                              PromptUpload* out) {
  out->name = name;
  if (IsDir(path)) {
    if (format != "auto" && format != "peft") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, path + " is a directory: only a PEFT adapter directory can be uploaded");
    }
    if (!ReadFile(path + "/adapter_config.json", &out->peft_config)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, path + "/adapter_config.json not found (not a PEFT adapter directory)");
    }
    if (!ReadFile(path + "/adapter_model.safetensors", &out->bytes)) {
      std::string unused;
      if (ReadFile(path + "/adapter_model.bin", &unused)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            path + " holds only adapter_model.bin; save the adapter with safe_serialization=True");
      }
      return grpc::Status(grpc::StatusCode::NOT_FOUND, path + "/adapter_model.safetensors not found");
    }
    out->format = v1::PROMPT_FORMAT_PEFT;
    return grpc::Status::OK;
  }
  if (!ReadFile(path, &out->bytes)) return grpc::Status(grpc::StatusCode::NOT_FOUND, "cannot read " + path);
  if (format == "raw") out->format = v1::PROMPT_FORMAT_RAW;
  else if (format == "residual") out->format = v1::PROMPT_FORMAT_RESIDUAL;
  else if (format == "auto") {
    const std::string header = SafetensorsHeader(out->bytes);
    out->format = header.find("\"mlp.down.weight\"") != std::string::npos ? v1::PROMPT_FORMAT_RESIDUAL
                                                                            : v1::PROMPT_FORMAT_RAW;
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "format must be auto, raw, peft or residual");
  }
  return grpc::Status::OK;
}

Result<std::shared_ptr<Client>> Client::Connect(const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_root_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!ReadFile(options.tls_root_ca_file, &ssl.pem_root_certs)) {
      return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot read " + options.tls_root_ca_file), nullptr};
    }
    if (!options.tls_client_cert_file.empty() &&
        (!ReadFile(options.tls_client_cert_file, &ssl.pem_cert_chain) ||
         !ReadFile(options.tls_client_key_file, &ssl.pem_private_key))) {
      return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot read the client certificate or key"), nullptr};
    }
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  if (options.max_attempts > 1) args.SetServiceConfigJSON(RetryServiceConfig(options));
  auto channel = grpc::CreateCustomChannel(options.target, creds, args);
  return {grpc::Status::OK, std::shared_ptr<Client>(new Client(options, channel))};
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      prompts_(v1::PromptService::NewStub(channel_)),
      inference_(v1::InferenceService::NewStub(channel_)),
      model_(v1::ModelService::NewStub(channel_)),
      training_(v1::TrainingService::NewStub(channel_)),
      health_(::grpc::health::v1::Health::NewStub(channel_)) {}

void Client::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  if (!options_.api_key.empty()) context->AddMetadata("authorization", "Bearer " + options_.api_key);
  if (!options_.request_id.empty()) context->AddMetadata("x-request-id", options_.request_id);
}

grpc::Status Client::Call(const std::function<grpc::Status(grpc::ClientContext*)>& attempt) const {
  grpc::ClientContext context;
  Prepare(&context);
  return attempt(&context);
}

Result<v1::Prompt> Client::UploadPrompt(const PromptUpload& upload, const std::function<void(size_t, size_t)>& progress) {
  Result<v1::Prompt> r;
  r.status = Call([&](grpc::ClientContext* context) {
    r.value.Clear();
    auto writer = prompts_->UploadPrompt(context, &r.value);
    v1::UploadPromptRequest header;
    auto* h = header.mutable_header();
    h->set_name(upload.name);
    h->set_format(upload.format);
    h->set_tenant(upload.tenant);
    h->set_peft_adapter_config(upload.peft_config);
    h->set_total_bytes(static_cast<int64_t>(upload.bytes.size()));
    h->set_sha256(HexSha256(upload.bytes));  // the server refuses bytes that arrive changed
    if (!writer->Write(header)) return writer->Finish();
    for (size_t off = 0; off < upload.bytes.size(); off += upload.chunk_bytes) {
      v1::UploadPromptRequest chunk;
      chunk.set_chunk(upload.bytes.substr(off, upload.chunk_bytes));
      if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
      if (progress) progress(std::min(upload.bytes.size(), off + upload.chunk_bytes), upload.bytes.size());
    }
    writer->WritesDone();
    return writer->Finish();
  });
  return r;
}

#define SOFTSERVE_CLIENT_UNARY(Method, Stub, Request, Response)                                     \
  Result<Response> Client::Method(const Request& request) {                                         \
    Result<Response> r;                                                                             \
    r.status = Call([&](grpc::ClientContext* c) { return Stub->Method(c, request, &r.value); }); \
    return r;                                                                                       \
  }

SOFTSERVE_CLIENT_UNARY(GetPrompt, prompts_, v1::GetPromptRequest, v1::Prompt)
SOFTSERVE_CLIENT_UNARY(ListPrompts, prompts_, v1::ListPromptsRequest, v1::ListPromptsResponse)
SOFTSERVE_CLIENT_UNARY(DeletePrompt, prompts_, v1::DeletePromptRequest, v1::DeletePromptResponse)
SOFTSERVE_CLIENT_UNARY(Generate, inference_, v1::GenerateRequest, v1::GenerateResponse)
SOFTSERVE_CLIENT_UNARY(Score, inference_, v1::ScoreRequest, v1::ScoreResponse)
SOFTSERVE_CLIENT_UNARY(Ensemble, inference_, v1::EnsembleRequest, v1::EnsembleResponse)
SOFTSERVE_CLIENT_UNARY(Explain, inference_, v1::ExplainRequest, v1::ExplainResponse)
SOFTSERVE_CLIENT_UNARY(Tokenize, inference_, v1::TokenizeRequest, v1::TokenizeResponse)
SOFTSERVE_CLIENT_UNARY(CancelGeneration, inference_, v1::CancelGenerationRequest, v1::CancelGenerationResponse)
SOFTSERVE_CLIENT_UNARY(TrainPrompt, training_, v1::TrainPromptRequest, v1::TrainingJob)
SOFTSERVE_CLIENT_UNARY(GetTrainingJob, training_, v1::TrainingJobRef, v1::TrainingJob)
SOFTSERVE_CLIENT_UNARY(CancelTrainingJob, training_, v1::TrainingJobRef, v1::TrainingJob)
SOFTSERVE_CLIENT_UNARY(ListTrainingJobs, training_, v1::ListTrainingJobsRequest, v1::ListTrainingJobsResponse)
#undef SOFTSERVE_CLIENT_UNARY

grpc::Status Client::GenerateStream(const v1::GenerateRequest& request,
                                    const std::function<void(const v1::GenerateStreamResponse&)>& on_message,
                                    grpc::ClientContext* context) {
  grpc::ClientContext own;
  grpc::ClientContext* c = context != nullptr ? context : &own;
  Prepare(c);
  auto reader = inference_->GenerateStream(c, request);
  v1::GenerateStreamResponse m;
  while (reader->Read(&m)) on_message(m);
  return reader->Finish();
}

grpc::Status Client::WatchTrainingJob(const v1::TrainingJobRef& request,
                                      const std::function<void(const v1::TrainingJob&)>& on_update,
                                      std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  Prepare(&context);
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = training_->WatchTrainingJob(&context, request);
  v1::TrainingJob job;
  while (reader->Read(&job)) on_update(job);
  return reader->Finish();
}

Result<v1::ModelInfo> Client::GetModelInfo() {
  Result<v1::ModelInfo> r;
  r.status = Call([&](grpc::ClientContext* c) { return model_->GetModelInfo(c, v1::GetModelInfoRequest(), &r.value); });
  return r;
}

Result<::grpc::health::v1::HealthCheckResponse> Client::Health(const std::string& service) {
  Result<::grpc::health::v1::HealthCheckResponse> r;
  ::grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  r.status = health_->Check(&c, req, &r.value);
  return r;
}

}  // namespace softserve::client
