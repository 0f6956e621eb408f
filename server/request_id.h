// Request ids and trace context of one call: the client's `x-request-id` metadata (or a
// generated id) and W3C `traceparent`, read once when a call begins. The id goes back to the
// client as `x-request-id` and into the call's access-log line (ServiceContext::Record), so a
// client, a proxy and the server's log name the same call. It is always in the trailing
// metadata; a call that answers with a response (not only a status) has it in its initial
// metadata too. A refused call carries no initial metadata: gRPC commits a call once headers
// arrive, so a refusal with headers could not be retried on another replica (a draining
// server's UNAVAILABLE behind nginx must be).
#ifndef SOFTSERVE_SERVER_REQUEST_ID_H_
#define SOFTSERVE_SERVER_REQUEST_ID_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "core/common/status.h"

namespace softserve::server {

struct CallIds {
  std::string request_id;   // the client's x-request-id, or a generated one
  std::string traceparent;  // as the client sent it; empty when absent
};

// A new id: 32 lowercase hex digits from a random source.
std::string NewRequestId();

// Reads the call's ids from the client's metadata into *ids and puts the request id in the
// response's trailing metadata. Without x-request-id the id is generated. InvalidArgument, naming
// the header, when x-request-id is not 1-128 visible ASCII characters or traceparent is not
// W3C's "version-traceid-parentid-flags" (2-32-16-2 lowercase hex digits); *ids then holds a
// generated id, which the error response carries too.
core::Status BeginCallIds(grpc::CallbackServerContext* context, CallIds* ids);

// Puts the request id in the response's initial metadata: call before the first message (or a
// unary call's successful Finish), never for a call that fails without answering.
void AnnounceRequestId(grpc::CallbackServerContext* context, const CallIds& ids);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_REQUEST_ID_H_
