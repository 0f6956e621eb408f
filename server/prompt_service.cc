#include "server/prompt_service.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/prompts/prompt_names.h"
#include "server/convert.h"
#include "server/status_util.h"
#include "server/upload_assembler.h"
#include "server/upload_workers.h"

namespace softserve::server {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

// The upload's bytes in an unlinked file of the spool directory: nothing is left behind if the
// server dies, and the memory an upload takes is one chunk, whatever its size.
class SpoolFile {
 public:
  ~SpoolFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  core::Status Open(const std::string& dir) {
    SOFTSERVE_RETURN_IF_ERROR(core::MakeDirectories(dir));
    std::string path = core::JoinPath(dir, "upload-XXXXXX");
    fd_ = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd_ < 0) return Errno("cannot create an upload spool file");
    ::unlink(path.c_str());
    return core::OkStatus();
  }
  core::Status Append(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("cannot spool the upload");
      data.remove_prefix(static_cast<size_t>(n));
      size_ += n;
    }
    return core::OkStatus();
  }
  // The bytes written so far, mapped read-only (valid while `map` lives).
  core::StatusOr<std::string_view> Map(std::shared_ptr<void>* map) const {
    if (size_ == 0) return std::string_view();
    void* p = ::mmap(nullptr, static_cast<size_t>(size_), PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) return Errno("cannot map the spooled upload");
    const size_t n = static_cast<size_t>(size_);
    *map = std::shared_ptr<void>(p, [n](void* q) { ::munmap(q, n); });
    return std::string_view(static_cast<const char*>(p), n);
  }
  int64_t size() const { return size_; }

 private:
  static core::Status Errno(const std::string& what) {
    const int e = errno;
    if (e == ENOSPC || e == EDQUOT) {
      return core::ResourceExhaustedError("the server's upload disk is full (" + std::string(std::strerror(e)) +
                                          "); nothing was stored, retry later");
    }
    spdlog::error("upload spool: {}: {}", what, std::strerror(e));
    return core::InternalError(what + " (" + std::strerror(e) + ")");
  }
  int fd_ = -1;
  int64_t size_ = 0;
};

// Reads the upload stream: header first, then chunks into the spool; the parse, validation and
// durable write run on an upload worker.
class UploadCall : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  UploadCall(const ServiceContext* sc, grpc::CallbackServerContext* context, grpc::ByteBuffer* response)
      : sc_(sc), context_(context), response_(response), start_(std::chrono::steady_clock::now()) {
    if (core::Status s = BeginCallIds(context, &record_.ids); !s.ok()) {
      Done(s);
      return;
    }
    auto caller = sc_->auth->Authenticate(*context);
    if (!caller.ok()) {
      Done(caller.status());
      return;
    }
    caller_ = *caller;
    record_.tenant = caller_.name();
    core::Status s = sc_->CheckAccepting();
    if (s.ok()) {
      auto slot = sc_->uploads->Acquire(*caller_.tenant);
      s = slot.status();
      if (slot.ok()) slot_ = std::move(slot).value();
    }
    if (!s.ok()) {
      Done(s);
      return;
    }
    StartRead(&raw_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close: the client sent everything (or cancelled, then nothing is stored).
      if (context_->IsCancelled()) return Done(core::CancelledError("upload cancelled by the client; nothing stored"));
      if (!assembler_.has_header()) return Done(core::InvalidArgumentError("empty upload: send a header and the file bytes"));
      sc_->upload_workers->Post([this] { Done(Complete()); });
      return;
    }
    v1::UploadPromptRequest message;
    core::Status s = ParseMessage(raw_, &message);
    const bool header = s.ok() && !assembler_.has_header();
    if (s.ok()) s = assembler_.Take(message);
    // Everything the header can be refused for is refused before a byte is spooled.
    if (s.ok() && header) s = TakeTenantAndOpenSpool();
    if (!s.ok()) return Done(s);
    StartRead(&raw_);
  }

  void OnDone() override { delete this; }

 private:
  core::Status TakeTenantAndOpenSpool() {
    SOFTSERVE_ASSIGN_OR_RETURN(tenant_, sc_->auth->TargetTenant(caller_, assembler_.header().tenant()));
    return spool_.Open(sc_->config->UploadDir());
  }

  // On an upload worker: checks, parse, durable write.
  core::Status Complete() {
    SOFTSERVE_RETURN_IF_ERROR(assembler_.Finish());
    std::shared_ptr<void> map;
    SOFTSERVE_ASSIGN_OR_RETURN(std::string_view bytes, spool_.Map(&map));
    SOFTSERVE_ASSIGN_OR_RETURN(core::NewPrompt prompt, ParseUpload(*sc_, assembler_.header(), bytes));
    const TenantConfig* t = sc_->auth->Find(tenant_);
    core::PromptQuota quota;
    quota.max_prompts = t->max_prompts;
    quota.max_bytes = t->max_prompt_bytes;
    auto stored = sc_->registry->Create(tenant_, assembler_.header().name(), std::move(prompt), quota);
    if (!stored.ok()) return PublicStoreError(stored.status());
    v1::Prompt reply;
    ToProto(**stored, false, &reply);
    *response_ = SerializeMessage(reply);
    detail_ = "prompt=" + (*stored)->key().ToString() + " bytes=" + Str(spool_.size());
    return core::OkStatus();
  }

  void Done(const core::Status& s) {
    slot_.reset();
    const grpc::Status g = ToGrpcStatus(s);
    record_.detail = detail_;
    sc_->Record("UploadPrompt", record_, g, start_);
    if (g.ok()) AnnounceRequestId(context_, record_.ids);
    Finish(g);
  }

  const ServiceContext* sc_;
  grpc::CallbackServerContext* context_;
  grpc::ByteBuffer* response_;
  std::chrono::steady_clock::time_point start_;
  Caller caller_;
  CallRecord record_;
  std::unique_ptr<UploadLimiter::Slot> slot_;
  grpc::ByteBuffer raw_;
  SpoolFile spool_;
  UploadAssembler assembler_{sc_->config->max_upload_bytes, [this](std::string_view b) { return spool_.Append(b); }};
  std::string tenant_;
  std::string detail_;
};

}  // namespace

core::Status PublicStoreError(const core::Status& status) {
  const std::string& m = status.message();
  if (m.rfind("prompt store: ", 0) != 0) return status;  // quota, validation: the client's to read
  spdlog::error("{}", m);
  const size_t colon = m.rfind(": ");
  const std::string reason = colon == std::string::npos ? "" : " (" + m.substr(colon + 2) + ")";
  if (status.code() == core::StatusCode::kResourceExhausted) {
    return core::ResourceExhaustedError("the server's prompt store disk is full" + reason +
                                        "; nothing was changed, retry later");
  }
  if (status.code() == core::StatusCode::kUnavailable) {  // the shared store (--store-url) is down
    return core::UnavailableError("the shared prompt store is unreachable; nothing was changed, retry later "
                                  "(prompts already stored keep serving)");
  }
  return core::InternalError("the server's prompt store failed" + reason + "; nothing was changed");
}

core::StatusOr<core::NewPrompt> ParseUpload(const ServiceContext& sc, const v1::UploadHeader& header,
                                            std::string_view bytes) {
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

grpc::ServerReadReactor<grpc::ByteBuffer>* PromptServiceImpl::UploadPrompt(grpc::CallbackServerContext* context,
                                                                           grpc::ByteBuffer* response) {
  return new UploadCall(sc_, context, response);
}

grpc::ServerUnaryReactor* PromptServiceImpl::GetPrompt(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::GetPromptRequest, v1::Prompt>(
      sc_, "GetPrompt", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::GetPromptRequest& req, v1::Prompt* resp) {
        auto tenant = sc_->auth->TargetTenant(call->caller(), req.tenant());
        if (!tenant.ok()) return call->Complete(tenant.status());
        if (req.version() < 0) return call->Complete(core::InvalidArgumentError("version must be >= 0 (0 = latest)"));
        auto p = sc_->registry->Get(*tenant, req.name(), req.version());
        if (p.ok()) ToProto(**p, req.include_values(), resp);
        call->Complete(p.status(), "prompt=" + req.name().substr(0, 100));
      });
}

grpc::ServerUnaryReactor* PromptServiceImpl::ListPrompts(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::ListPromptsRequest, v1::ListPromptsResponse>(
      sc_, "ListPrompts", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::ListPromptsRequest& req,
             v1::ListPromptsResponse* resp) {
        auto tenant = sc_->auth->TargetTenant(call->caller(), req.tenant());
        if (!tenant.ok()) return call->Complete(tenant.status());
        auto page = sc_->registry->List(*tenant, req.name_prefix(), req.page_size() == 0 ? 100 : req.page_size(),
                                        req.page_token());
        if (page.ok()) {
          for (const core::PromptPtr& p : page->prompts) ToProto(*p, false, resp->add_prompts());
          resp->set_next_page_token(page->next_page_token);
        }
        call->Complete(page.status());
      });
}

grpc::ServerUnaryReactor* PromptServiceImpl::DeletePrompt(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::DeletePromptRequest, v1::DeletePromptResponse>(
      sc_, "DeletePrompt", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::DeletePromptRequest& req,
             v1::DeletePromptResponse* resp) {
        auto tenant = sc_->auth->TargetTenant(call->caller(), req.tenant());
        if (!tenant.ok()) return call->Complete(tenant.status());
        if (req.version() < 0) return call->Complete(core::InvalidArgumentError("version must be >= 0 (0 = every version)"));
        int64_t deleted = 0;
        core::Status s = sc_->registry->Delete(*tenant, req.name(), req.version(), &deleted);
        resp->set_deleted_versions(deleted);
        call->Complete(PublicStoreError(s), "prompt=" + req.name().substr(0, 100));
      });
}

}  // namespace softserve::server
