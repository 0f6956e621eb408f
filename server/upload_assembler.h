// UploadAssembler: the framing of a prompt upload, apart from gRPC. An upload is a stream of
// UploadPromptRequest messages: the header first, then chunks. The header is checked as soon
// as it arrives (name, format, declared size, digest syntax), chunks go to a sink within the size
// limit and are hashed as they pass, and Finish checks the declared size and the digest.
// The server's UploadCall feeds it a spool file as the sink; the fuzzer and tests feed memory.
// Not thread-safe: one upload, one caller at a time.
//
// Errors: InvalidArgument (header not first, a second header, bad name or format, negative
// size, malformed digest, truncated stream, digest mismatch), ResourceExhausted (declared or
// streamed size over max_bytes), or the sink's own error.
#ifndef SOFTSERVE_SERVER_UPLOAD_ASSEMBLER_H_
#define SOFTSERVE_SERVER_UPLOAD_ASSEMBLER_H_

#include <cstdint>
#include <functional>
#include <string_view>

#include "core/common/sha256.h"
#include "core/common/status.h"
#include "softserve/v1/softserve.pb.h"

namespace softserve::server {

class UploadAssembler {
 public:
  using Sink = std::function<core::Status(std::string_view bytes)>;
  UploadAssembler(int64_t max_bytes, Sink sink) : max_bytes_(max_bytes), sink_(std::move(sink)) {}

  // One message of the stream, in order.
  core::Status Take(const ::softserve::v1::UploadPromptRequest& message);
  // After the last message. InvalidArgument for an empty stream, a truncated one or a digest
  // that does not match the bytes.
  core::Status Finish();

  bool has_header() const { return has_header_; }
  const ::softserve::v1::UploadHeader& header() const { return header_; }
  int64_t bytes() const { return bytes_; }

 private:
  core::Status TakeHeader(const ::softserve::v1::UploadHeader& header);

  const int64_t max_bytes_;
  Sink sink_;
  ::softserve::v1::UploadHeader header_;
  bool has_header_ = false;
  int64_t bytes_ = 0;
  core::Sha256 sha_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_UPLOAD_ASSEMBLER_H_
