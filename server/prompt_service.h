// softserve.v1.PromptService: upload (client streaming), get, list and delete, all scoped to
// the caller's tenant (another tenant's prompts are NOT_FOUND, so existence never leaks).
//
// Uploads are bounded: a tenant may have max_uploads in progress and the server
// max_concurrent_uploads; the bytes are spooled to an unlinked file in the upload directory
// (never held in memory), hashed as they arrive, and limited to max_upload_bytes
// (RESOURCE_EXHAUSTED, whether the header declares too much or the stream sends it). Parsing,
// validation and the durable write run on UploadWorkers, off the gRPC threads. A full disk is
// RESOURCE_EXHAUSTED naming it; store errors never show the server's paths.
#ifndef SOFTSERVE_SERVER_PROMPT_SERVICE_H_
#define SOFTSERVE_SERVER_PROMPT_SERVICE_H_

#include <string_view>

#include "server/call.h"
#include "server/service_context.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

using RawPromptService = v1::PromptService::WithRawCallbackMethod_UploadPrompt<
    v1::PromptService::WithRawCallbackMethod_GetPrompt<v1::PromptService::WithRawCallbackMethod_ListPrompts<
        v1::PromptService::WithRawCallbackMethod_DeletePrompt<v1::PromptService::Service>>>>;

class PromptServiceImpl final : public RawPromptService {
 public:
  explicit PromptServiceImpl(const ServiceContext* sc) : sc_(sc) {}

  grpc::ServerReadReactor<grpc::ByteBuffer>* UploadPrompt(grpc::CallbackServerContext* context,
                                                          grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetPrompt(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListPrompts(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DeletePrompt(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  const ServiceContext* sc_;
};

// Parses an upload's bytes per its header into a registrable prompt (no I/O). InvalidArgument
// for a bad format, truncated or corrupt bytes, wrong width, NaN or absurd values;
// ResourceExhausted over the size limit.
core::StatusOr<core::NewPrompt> ParseUpload(const ServiceContext& sc, const v1::UploadHeader& header,
                                            std::string_view bytes);

// A status from the prompt store with the server's file paths taken out (logged in full):
// ResourceExhausted for a full disk says so, anything else is Internal.
core::Status PublicStoreError(const core::Status& status);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_PROMPT_SERVICE_H_
