#include "server/prompt_service.h"

#include <chrono>

#include "core/common/sha256.h"
#include "core/prompts/prompt_names.h"
#include "server/call.h"
#include "server/convert.h"
#include "server/status_util.h"

namespace softserve::server {
namespace {

// Reads the upload stream: header first, then chunks, then parse, validate and store.
class UploadCall : public grpc::ServerReadReactor<v1::UploadPromptRequest> {
 public:
  UploadCall(const ServiceContext* sc, grpc::CallbackServerContext* context, v1::Prompt* response)
      : sc_(sc), context_(context), response_(response), start_(std::chrono::steady_clock::now()) {
    auto caller = sc_->auth->Authenticate(*context);
    if (!caller.ok()) {
      Done(caller.status());
      return;
    }
    caller_ = *caller;
    if (core::Status s = sc_->CheckAccepting(); !s.ok()) {
      Done(s);
      return;
    }
    StartRead(&message_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close: the client sent everything (or cancelled, then nothing is stored).
      if (context_->IsCancelled()) return Done(core::CancelledError("upload cancelled by the client; nothing stored"));
      return Done(Complete());
    }
    if (!have_header_) {
      if (message_.part_case() != v1::UploadPromptRequest::kHeader) {
        return Done(core::InvalidArgumentError("the first upload message must be the header"));
      }
      header_ = message_.header();
      have_header_ = true;
      if (header_.total_bytes() < 0 || header_.total_bytes() > sc_->config->max_upload_bytes) {
        return Done(core::InvalidArgumentError("total_bytes = " + std::to_string(header_.total_bytes()) +
                                               "; uploads are limited to " + std::to_string(sc_->config->max_upload_bytes) + " bytes"));
      }
    } else if (message_.part_case() != v1::UploadPromptRequest::kChunk) {
      return Done(core::InvalidArgumentError("only the first upload message may be a header"));
    } else {
      if (static_cast<int64_t>(bytes_.size() + message_.chunk().size()) > sc_->config->max_upload_bytes) {
        return Done(core::ResourceExhaustedError("upload exceeds the limit of " +
                                                 std::to_string(sc_->config->max_upload_bytes) + " bytes"));
      }
      bytes_ += message_.chunk();
    }
    StartRead(&message_);
  }

  void OnDone() override { delete this; }

 private:
  core::Status Complete() {
    if (!have_header_) return core::InvalidArgumentError("empty upload: send a header and the file bytes");
    if (header_.total_bytes() > 0 && static_cast<int64_t>(bytes_.size()) != header_.total_bytes()) {
      return core::InvalidArgumentError("upload truncated: received " + std::to_string(bytes_.size()) + " of " +
                                        std::to_string(header_.total_bytes()) + " bytes; nothing stored");
    }
    if (!header_.sha256().empty() && core::Sha256Hex(bytes_) != header_.sha256()) {
      return core::InvalidArgumentError("upload corrupted: SHA-256 of the received bytes differs from the header's");
    }
    SOFTSERVE_ASSIGN_OR_RETURN(std::string tenant, sc_->auth->TargetTenant(caller_, header_.tenant()));
    SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(header_.name(), "prompt name"));
    SOFTSERVE_ASSIGN_OR_RETURN(core::NewPrompt prompt, ParseUpload(*sc_, header_, bytes_));
    const TenantConfig* t = sc_->auth->Find(tenant);
    core::PromptQuota quota;
    quota.max_prompts = t->max_prompts;
    quota.max_bytes = t->max_prompt_bytes;
    SOFTSERVE_ASSIGN_OR_RETURN(core::PromptPtr stored, sc_->registry->Create(tenant, header_.name(), std::move(prompt), quota));
    ToProto(*stored, false, response_);
    detail_ = "prompt=" + stored->key().ToString() + " bytes=" + std::to_string(bytes_.size());
    return core::OkStatus();
  }

  void Done(const core::Status& s) {
    const grpc::Status g = ToGrpcStatus(s);
    sc_->Record("UploadPrompt", caller_.tenant ? caller_.name() : "", g, start_, detail_);
    Finish(g);
  }

  const ServiceContext* sc_;
  grpc::CallbackServerContext* context_;
  v1::Prompt* response_;
  std::chrono::steady_clock::time_point start_;
  Caller caller_;
  v1::UploadPromptRequest message_;
  v1::UploadHeader header_;
  bool have_header_ = false;
  std::string bytes_;
  std::string detail_;
};

}  // namespace

core::StatusOr<core::NewPrompt> ParseUpload(const ServiceContext& sc, const v1::UploadHeader& header,
                                            const std::string& bytes) {
  core::StatusOr<core::PromptMatrix> m = core::InvalidArgumentError("");
  switch (header.format()) {
    case v1::PROMPT_FORMAT_RAW: m = core::ParseRawPrompt(bytes, sc.prompt_limits); break;
    case v1::PROMPT_FORMAT_RESIDUAL: m = core::ParseResidualPrompt(bytes, sc.prompt_limits); break;
    case v1::PROMPT_FORMAT_PEFT:
      if (header.peft_adapter_config().empty()) {
        return core::InvalidArgumentError("PEFT uploads need the adapter_config.json contents in the header");
      }
      m = core::ParsePeftPrompt(header.peft_adapter_config(), bytes, sc.prompt_limits);
      break;
    default:
      return core::InvalidArgumentError("format must be PROMPT_FORMAT_RAW, PROMPT_FORMAT_PEFT or PROMPT_FORMAT_RESIDUAL");
  }
  if (!m.ok()) return m.status();
  return core::NewPrompt{m->rows, m->dim, std::move(m->values), m->format, std::move(m->note)};
}

grpc::ServerReadReactor<v1::UploadPromptRequest>* PromptServiceImpl::UploadPrompt(grpc::CallbackServerContext* context,
                                                                                  v1::Prompt* response) {
  return new UploadCall(sc_, context, response);
}

grpc::ServerUnaryReactor* PromptServiceImpl::GetPrompt(grpc::CallbackServerContext* context,
                                                       const v1::GetPromptRequest* request, v1::Prompt* response) {
  auto* call = new UnaryCall(sc_, "GetPrompt");
  if (!call->Begin(context, false)) return call;
  auto tenant = sc_->auth->TargetTenant(call->caller(), request->tenant());
  if (!tenant.ok()) {
    call->Complete(tenant.status());
    return call;
  }
  auto p = sc_->registry->Get(*tenant, request->name(), request->version());
  if (p.ok()) ToProto(**p, request->include_values(), response);
  call->Complete(p.status(), "prompt=" + request->name());
  return call;
}

grpc::ServerUnaryReactor* PromptServiceImpl::ListPrompts(grpc::CallbackServerContext* context,
                                                         const v1::ListPromptsRequest* request,
                                                         v1::ListPromptsResponse* response) {
  auto* call = new UnaryCall(sc_, "ListPrompts");
  if (!call->Begin(context, false)) return call;
  auto tenant = sc_->auth->TargetTenant(call->caller(), request->tenant());
  if (!tenant.ok()) {
    call->Complete(tenant.status());
    return call;
  }
  auto page = sc_->registry->List(*tenant, request->name_prefix(), request->page_size() == 0 ? 100 : request->page_size(),
                                  request->page_token());
  if (page.ok()) {
    for (const core::PromptPtr& p : page->prompts) ToProto(*p, false, response->add_prompts());
    response->set_next_page_token(page->next_page_token);
  }
  call->Complete(page.status());
  return call;
}

grpc::ServerUnaryReactor* PromptServiceImpl::DeletePrompt(grpc::CallbackServerContext* context,
                                                          const v1::DeletePromptRequest* request,
                                                          v1::DeletePromptResponse* response) {
  auto* call = new UnaryCall(sc_, "DeletePrompt");
  if (!call->Begin(context, false)) return call;
  auto tenant = sc_->auth->TargetTenant(call->caller(), request->tenant());
  if (!tenant.ok()) {
    call->Complete(tenant.status());
    return call;
  }
  int64_t deleted = 0;
  core::Status s = sc_->registry->Delete(*tenant, request->name(), request->version(), &deleted);
  response->set_deleted_versions(deleted);
  call->Complete(s, "prompt=" + request->name());
  return call;
}

}  // namespace softserve::server
