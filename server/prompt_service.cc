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
#include "server/upload_workers.h"

namespace softserve::server {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

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
    auto caller = sc_->auth->Authenticate(*context);
    if (!caller.ok()) {
      Done(caller.status());
      return;
    }
    caller_ = *caller;
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
      if (!have_header_) return Done(core::InvalidArgumentError("empty upload: send a header and the file bytes"));
      sc_->upload_workers->Post([this] { Done(Complete()); });
      return;
    }
    v1::UploadPromptRequest message;
    core::Status s = ParseMessage(raw_, &message);
    if (s.ok()) s = have_header_ ? TakeChunk(message) : TakeHeader(message);
    if (!s.ok()) return Done(s);
    StartRead(&raw_);
  }

  void OnDone() override { delete this; }

 private:
  core::Status TakeHeader(const v1::UploadPromptRequest& message) {
    if (message.part_case() != v1::UploadPromptRequest::kHeader) {
      return core::InvalidArgumentError("the first upload message must be the header");
    }
    header_ = message.header();
    have_header_ = true;
    const int64_t limit = sc_->config->max_upload_bytes;
    if (header_.total_bytes() < 0) {
      return core::InvalidArgumentError("total_bytes = " + Str(header_.total_bytes()) + " is negative");
    }
    if (header_.total_bytes() > limit) {
      return core::ResourceExhaustedError("total_bytes = " + Str(header_.total_bytes()) + "; uploads are limited to " +
                                          Str(limit) + " bytes (max_upload_bytes)");
    }
    if (!header_.sha256().empty() && !IsHex64(header_.sha256())) {
      return core::InvalidArgumentError("sha256 must be 64 hex digits (either case), got " +
                                        core::QuoteForMessage(header_.sha256(), 80));
    }
    if (!v1::PromptFormat_IsValid(header_.format()) || header_.format() == v1::PROMPT_FORMAT_UNSPECIFIED) {
      return core::InvalidArgumentError("format must be PROMPT_FORMAT_RAW, PROMPT_FORMAT_PEFT or PROMPT_FORMAT_RESIDUAL");
    }
    // Everything the header can be refused for is refused before a byte is spooled.
    SOFTSERVE_ASSIGN_OR_RETURN(tenant_, sc_->auth->TargetTenant(caller_, header_.tenant()));
    SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(header_.name(), "prompt name"));
    return spool_.Open(sc_->config->UploadDir());
  }

  core::Status TakeChunk(const v1::UploadPromptRequest& message) {
    if (message.part_case() != v1::UploadPromptRequest::kChunk) {
      return core::InvalidArgumentError("only the first upload message may be a header");
    }
    const std::string& chunk = message.chunk();
    if (spool_.size() + static_cast<int64_t>(chunk.size()) > sc_->config->max_upload_bytes) {
      return core::ResourceExhaustedError("upload exceeds the limit of " + Str(sc_->config->max_upload_bytes) +
                                          " bytes (max_upload_bytes)");
    }
    sha_.Update(chunk);
    return spool_.Append(chunk);
  }

  // On an upload worker: checks, parse, durable write.
  core::Status Complete() {
    if (header_.total_bytes() > 0 && spool_.size() != header_.total_bytes()) {
      return core::InvalidArgumentError("upload truncated: received " + Str(spool_.size()) + " of " +
                                        Str(header_.total_bytes()) + " bytes; nothing stored");
    }
    if (!header_.sha256().empty()) {
      auto digest = sha_.Finish();
      if (core::ToHex(digest.data(), digest.size()) != Lower(header_.sha256())) {
        return core::InvalidArgumentError("upload corrupted: SHA-256 of the received bytes differs from the header's");
      }
    }
    std::shared_ptr<void> map;
    SOFTSERVE_ASSIGN_OR_RETURN(std::string_view bytes, spool_.Map(&map));
    SOFTSERVE_ASSIGN_OR_RETURN(core::NewPrompt prompt, ParseUpload(*sc_, header_, bytes));
    const TenantConfig* t = sc_->auth->Find(tenant_);
    core::PromptQuota quota;
    quota.max_prompts = t->max_prompts;
    quota.max_bytes = t->max_prompt_bytes;
    auto stored = sc_->registry->Create(tenant_, header_.name(), std::move(prompt), quota);
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
    sc_->Record("UploadPrompt", caller_.tenant ? caller_.name() : "", g, start_, detail_);
    Finish(g);
  }

  const ServiceContext* sc_;
  grpc::CallbackServerContext* context_;
  grpc::ByteBuffer* response_;
  std::chrono::steady_clock::time_point start_;
  Caller caller_;
  std::unique_ptr<UploadLimiter::Slot> slot_;
  grpc::ByteBuffer raw_;
  v1::UploadHeader header_;
  bool have_header_ = false;
  std::string tenant_;
  SpoolFile spool_;
  core::Sha256 sha_;
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
