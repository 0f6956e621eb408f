#include "server/request_id.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <random>

namespace softserve::server {
namespace {

constexpr size_t kMaxRequestIdLength = 128;

// The value of metadata `key`, or nullptr; *repeated when the client sent it more than once.
const grpc::string_ref* Find(const grpc::CallbackServerContext& context, const char* key, bool* repeated) {
  const auto& md = context.client_metadata();
  auto range = md.equal_range(key);
  if (range.first == range.second) return nullptr;
  *repeated = std::next(range.first) != range.second;
  return &range.first->second;
}

bool VisibleAscii(const grpc::string_ref& s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool LowerHex(const std::string& s, size_t begin, size_t n) {
  for (size_t i = begin; i < begin + n; ++i) {
    const char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool ValidTraceparent(const std::string& s) {
  // 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
  return s.size() == 55 && s[2] == '-' && s[35] == '-' && s[52] == '-' && LowerHex(s, 0, 2) && LowerHex(s, 3, 32) &&
         LowerHex(s, 36, 16) && LowerHex(s, 53, 2) && s.compare(0, 2, "ff") != 0;
}

}  // namespace

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

core::Status BeginCallIds(grpc::CallbackServerContext* context, CallIds* ids) {
  core::Status status;
  bool repeated = false;
  const grpc::string_ref* id = Find(*context, "x-request-id", &repeated);
  if (id == nullptr) {
    ids->request_id = NewRequestId();
  } else if (repeated || id->empty() || id->size() > kMaxRequestIdLength || !VisibleAscii(*id)) {
    ids->request_id = NewRequestId();
    status = core::InvalidArgumentError(
        "metadata x-request-id must be sent once, as 1-128 visible ASCII characters (no spaces); this call's id is " +
        ids->request_id);
  } else {
    ids->request_id.assign(id->data(), id->size());
  }
  const grpc::string_ref* trace = Find(*context, "traceparent", &repeated);
  if (trace != nullptr) {
    ids->traceparent.assign(trace->data(), std::min<size_t>(trace->size(), 64));
    if (status.ok() && (repeated || !ValidTraceparent(std::string(trace->data(), trace->size())))) {
      status = core::InvalidArgumentError(
          "metadata traceparent must be W3C trace context: version-traceid-parentid-flags, 2-32-16-2 lowercase hex "
          "digits (e.g. 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01)");
    }
  }
  context->AddTrailingMetadata("x-request-id", ids->request_id);
  return status;
}

void AnnounceRequestId(grpc::CallbackServerContext* context, const CallIds& ids) {
  context->AddInitialMetadata("x-request-id", ids.request_id);
}

}  // namespace softserve::server
