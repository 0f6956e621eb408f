// Status and StatusOr: the error model of everything under core/.
//
// core/ must build with libtorch alone (GPU images carry no abseil), so this is a small
// stand-alone equivalent of absl::Status with the same canonical codes (the gRPC codes). The
// server maps a Status to grpc::Status in exactly one function. No exception leaves core/.
#ifndef SOFTSERVE_CORE_COMMON_STATUS_H_
#define SOFTSERVE_CORE_COMMON_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace softserve::core {

// Same numbering as google.rpc.Code / grpc::StatusCode.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc.
const char* StatusCodeName(StatusCode code);

// A code plus a human-actionable message. Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NOT_FOUND: prompt 'x' does not exist"; "OK" when ok.
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status WithPrefix(const std::string& prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message);
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status OutOfRangeError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

// Quotes text a client sent for use inside an error message: single-quoted, at most
// `max_bytes` bytes of it (then "...(N more bytes)"), and every byte that is not printable
// ASCII, a quote or a backslash escaped as \xNN / \' / \\, so that a message never carries
// control characters, broken UTF-8 or unbounded input back to the caller or into logs.
std::string QuoteForMessage(std::string_view text, size_t max_bytes = 200);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // REQUIRES: !status.ok().
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr built from OK status");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace softserve::core

#define SOFTSERVE_STATUS_CONCAT_INNER(a, b) a##b
#define SOFTSERVE_STATUS_CONCAT(a, b) SOFTSERVE_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (a Status); returns it from the enclosing function if not OK.
#define SOFTSERVE_RETURN_IF_ERROR(expr)                       \
  do {                                                        \
    ::softserve::core::Status softserve_status_ = (expr);     \
    if (!softserve_status_.ok()) return softserve_status_;    \
  } while (0)

// Evaluates `expr` (a StatusOr<T>); returns its Status if not OK, else moves the value into
// `lhs` (which may be a declaration such as `auto x`).
#define SOFTSERVE_ASSIGN_OR_RETURN(lhs, expr) \
  SOFTSERVE_ASSIGN_OR_RETURN_IMPL(SOFTSERVE_STATUS_CONCAT(softserve_statusor_, __LINE__), lhs, expr)
#define SOFTSERVE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  lhs = std::move(tmp).value()

#endif  // SOFTSERVE_CORE_COMMON_STATUS_H_
