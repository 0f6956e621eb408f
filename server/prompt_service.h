// softserve.v1.PromptService: upload (client streaming), get, list and delete, all scoped to
// the caller's tenant (another tenant's prompts are NOT_FOUND, so existence never leaks).
#ifndef SOFTSERVE_SERVER_PROMPT_SERVICE_H_
#define SOFTSERVE_SERVER_PROMPT_SERVICE_H_

#include "server/service_context.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

class PromptServiceImpl final : public v1::PromptService::CallbackService {
 public:
  explicit PromptServiceImpl(const ServiceContext* sc) : sc_(sc) {}

  grpc::ServerReadReactor<v1::UploadPromptRequest>* UploadPrompt(grpc::CallbackServerContext* context,
                                                                 v1::Prompt* response) override;
  grpc::ServerUnaryReactor* GetPrompt(grpc::CallbackServerContext* context, const v1::GetPromptRequest* request,
                                      v1::Prompt* response) override;
  grpc::ServerUnaryReactor* ListPrompts(grpc::CallbackServerContext* context, const v1::ListPromptsRequest* request,
                                        v1::ListPromptsResponse* response) override;
  grpc::ServerUnaryReactor* DeletePrompt(grpc::CallbackServerContext* context,
                                         const v1::DeletePromptRequest* request,
                                         v1::DeletePromptResponse* response) override;

 private:
  const ServiceContext* sc_;
};

// Parses an upload's bytes per its header into a registrable prompt (no I/O). InvalidArgument
// for a bad format, truncated or corrupt bytes, wrong width, NaN values.
core::StatusOr<core::NewPrompt> ParseUpload(const ServiceContext& sc, const v1::UploadHeader& header,
                                            const std::string& bytes);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_PROMPT_SERVICE_H_
