// The HTTP/JSON front-end (`--http-listen`): OpenAI's POST /v1/completions (with server-sent
// events when "stream" is true) and GET /v1/models, served with cpp-httplib; and
// POST /v1/completions/{request_id}/cancel, which ends the caller's completion that was sent
// with that x-request-id early (it answers with what it has and finish_reason "cancelled").
//
// One engine, two transports: every HTTP request becomes a call to the gRPC services through an
// in-process channel, carrying the client's `Authorization` header as the gRPC metadata of the
// same name and its `x-request-id` / `traceparent`. Authentication, validation, quotas,
// fairness, draining, metrics and the access log are therefore the gRPC path's own; this layer
// translates shapes (openai_api.h) and maps status codes, nothing else.
//
// Responses carry `x-request-id`. Errors are OpenAI's JSON error shape with the HTTP status of
// HttpStatusFor. A streamed response that fails after its first event ends with an event
// holding the error JSON, then "data: [DONE]". A client that disconnects cancels its call (its
// engine rows are freed at the next step).
//
// Deadlines: a request may send `x-request-timeout-seconds` (at most max_timeout_seconds, which
// is also the default); past it the call ends with 504.
//
// Threading: cpp-httplib's accept thread plus a pool of `threads` workers, one per connection
// being served (a streamed completion holds its worker until it ends; connections beyond the
// pool wait for a worker). Start and Stop are called from one thread.
#ifndef SOFTSERVE_SERVER_HTTP_GATEWAY_H_
#define SOFTSERVE_SERVER_HTTP_GATEWAY_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/common/status.h"

namespace softserve::server {

struct HttpGatewayOptions {
  std::string listen;  // HOST:PORT ([v6]:PORT); port 0 picks a free one
  int threads = 32;
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413
  double max_timeout_seconds = 600;
  // Called after each request (on the worker that served it) with its route
  // ("/v1/completions", "/v1/models" or "other"), HTTP status and seconds; may be null.
  std::function<void(const std::string& route, int status, double seconds)> on_request;
};

class HttpGateway {
 public:
  // Binds and starts serving. InvalidArgument for a malformed address; Unavailable when it
  // cannot be bound. `channel` reaches the gRPC services (grpc::Server::InProcessChannel).
  static core::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpGatewayOptions& options,
                                                            std::shared_ptr<grpc::Channel> channel);
  ~HttpGateway();  // Stop()

  int port() const;
  // Stops accepting and waits for the requests being served. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit HttpGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_HTTP_GATEWAY_H_
