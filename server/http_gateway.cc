#include "server/http_gateway.h"

#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>
#include <utility>

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "server/openai_api.h"
#include "server/status_util.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {
namespace {

constexpr const char* kJson = "application/json";

void SendError(httplib::Response& res, grpc::StatusCode code, const std::string& message) {
  res.status = HttpStatusFor(code);
  res.set_content(ErrorBody(code, message), kJson);
}

// Printable ASCII only: anything else cannot travel as gRPC metadata.
bool Printable(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string Metadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md, const char* key) {
  auto it = md.find(key);
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

// The call's request id: the server announces it in initial metadata when it answers and in the
// trailing metadata always.
std::string RequestIdOf(const grpc::ClientContext& context, bool finished) {
  std::string id = Metadata(context.GetServerInitialMetadata(), "x-request-id");
  if (id.empty() && finished) id = Metadata(context.GetServerTrailingMetadata(), "x-request-id");
  return id;
}

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One streamed completion: lives as long as httplib's content provider.
struct StreamState {
  CompletionCall call;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateStreamResponse>> reader;
  std::unique_ptr<CompletionBuilder> builder;
  v1::GenerateStreamResponse first;
  bool have_first = false;
  bool finished = false;

  grpc::Status Finish() {
    finished = true;
    return reader->Finish();
  }
  // Cancels a call whose client went away; the reader is drained so that Finish returns.
  void Abandon() {
    if (finished) return;
    context.TryCancel();
    v1::GenerateStreamResponse m;
    while (reader->Read(&m)) {
    }
    Finish();
  }
};

std::string Event(const std::string& json) { return "data: " + json + "\n\n"; }

// A TrainingService message in protobuf's JSON mapping, with snake_case names.
std::string ProtoJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

// For POST routes whose body carries nothing: reads and drops a body only when the client
// announced one, so that a bodiless POST (curl -X POST, no Content-Length) is answered at once
// instead of being read until the connection's read timeout.
void DropBody(const httplib::Request& req, const httplib::ContentReader& read) {
  if (req.has_header("Content-Length") || req.get_header_value("Transfer-Encoding") == "chunked") {
    read([](const char*, size_t) { return true; });
  }
}

// The route label of metrics: the path with ids taken out.
std::string RouteOf(const std::string& path) {
  if (path == "/v1/completions" || path == "/v1/models" || path == "/v1/training/jobs") return path;
  auto ends_with = [&](const std::string& tail) {
    return path.size() > tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (path.rfind("/v1/completions/", 0) == 0 && ends_with("/cancel")) return "/v1/completions/{id}/cancel";
  if (path.rfind("/v1/training/jobs/", 0) == 0) return ends_with("/cancel") ? "/v1/training/jobs/{id}/cancel" : "/v1/training/jobs/{id}";
  return "other";
}

}  // namespace

struct HttpGateway::Impl {
  HttpGatewayOptions options;
  std::unique_ptr<v1::InferenceService::Stub> inference;
  std::unique_ptr<v1::PromptService::Stub> prompts;
  std::unique_ptr<v1::TrainingService::Stub> training;
  httplib::Server http;
  std::thread listener;
  int port = 0;
  bool stopped = false;

  // Copies what the gRPC services read from the HTTP request; false (with the response set) for a
  // header that cannot be sent.
  bool PrepareContext(const httplib::Request& req, grpc::ClientContext* context, httplib::Response& res) const {
    for (const char* header : {"authorization", "x-request-id", "traceparent"}) {
      if (!req.has_header(header)) continue;
      const std::string value = req.get_header_value(header);
      if (!Printable(value)) {
        SendError(res, std::string(header) == "authorization" ? grpc::StatusCode::UNAUTHENTICATED
                                                              : grpc::StatusCode::INVALID_ARGUMENT,
                  std::string("header ") + header + " must be printable ASCII");
        return false;
      }
      context->AddMetadata(header, value);
    }
    double seconds = options.max_timeout_seconds;
    if (req.has_header("x-request-timeout-seconds")) {
      const std::string v = req.get_header_value("x-request-timeout-seconds");
      char* end = nullptr;
      const double asked = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(asked > 0)) {
        SendError(res, grpc::StatusCode::INVALID_ARGUMENT, "header x-request-timeout-seconds must be a number > 0");
        return false;
      }
      seconds = std::min(asked, seconds);
    }
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double>(seconds)));
    return true;
  }

  void Completions(const httplib::Request& req, httplib::Response& res) {
    auto call = ParseCompletionRequest(req.body, RandomSeed());
    if (!call.ok()) {
      const grpc::Status g = ToGrpcStatus(call.status());
      return SendError(res, g.error_code(), g.error_message());
    }
    auto state = std::make_shared<StreamState>();
    state->call = std::move(call).value();
    if (!PrepareContext(req, &state->context, res)) return;
    state->reader = inference->GenerateStream(&state->context, state->call.request);
    state->have_first = state->reader->Read(&state->first);
    if (!state->have_first) {
      const grpc::Status s = state->Finish();
      res.set_header("x-request-id", RequestIdOf(state->context, true));
      if (!s.ok()) return SendError(res, s.error_code(), s.error_message());
    }
    const std::string id = RequestIdOf(state->context, state->finished);
    res.set_header("x-request-id", id);
    state->builder = std::make_unique<CompletionBuilder>(state->call, "cmpl-" + id, UnixNow());
    if (state->call.stream) return Stream(state, res);
    v1::GenerateStreamResponse m = state->first;
    for (bool more = state->have_first; more; more = state->reader->Read(&m)) state->builder->Take(m);
    const grpc::Status s = state->finished ? grpc::Status::OK : state->Finish();
    if (!s.ok()) return SendError(res, s.error_code(), s.error_message());
    res.set_content(state->builder->Response(), kJson);
  }

  static void Stream(std::shared_ptr<StreamState> state, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [state](size_t, httplib::DataSink& sink) {
          std::string out;
          v1::GenerateStreamResponse m;
          if (state->have_first) {
            out = Event(state->builder->Take(state->first));
            state->have_first = false;
          } else if (!state->finished && state->reader->Read(&m)) {
            out = Event(state->builder->Take(m));
          } else {
            const grpc::Status s = state->finished ? grpc::Status::OK : state->Finish();
            if (!s.ok()) {
              out = Event(ErrorBody(s.error_code(), s.error_message()));
            } else if (state->call.include_usage) {
              out = Event(state->builder->UsageChunk());
            }
            out += "data: [DONE]\n\n";
            const bool ok = sink.write(out.data(), out.size());
            sink.done();
            return ok;
          }
          return sink.write(out.data(), out.size());
        },
        [state](bool) { state->Abandon(); });
  }

  // One unary gRPC call whose response goes back as ProtoJson; `call(context, response)`.
  template <typename Resp, typename Call>
  void ProtoCall(const httplib::Request& req, httplib::Response& res, const Call& call) {
    grpc::ClientContext context;
    if (!PrepareContext(req, &context, res)) return;
    Resp response;
    const grpc::Status s = call(&context, &response);
    res.set_header("x-request-id", RequestIdOf(context, true));
    if (!s.ok()) return SendError(res, s.error_code(), s.error_message());
    res.set_content(ProtoJson(response), kJson);
  }

  // POST /v1/training/jobs: TrainingService.TrainPrompt with a TrainPromptRequest in JSON.
  void StartTraining(const httplib::Request& req, httplib::Response& res) {
    v1::TrainPromptRequest request;
    const auto parsed = google::protobuf::util::JsonStringToMessage(req.body, &request);
    if (!parsed.ok()) {
      return SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                       "the body is not a TrainPromptRequest in JSON (docs/API.md): " + std::string(parsed.message()));
    }
    ProtoCall<v1::TrainingJob>(req, res, [&](grpc::ClientContext* c, v1::TrainingJob* out) {
      return training->TrainPrompt(c, request, out);
    });
  }

  // GET /v1/training/jobs/{id} and POST /v1/training/jobs/{id}/cancel.
  void TrainingJob(const httplib::Request& req, httplib::Response& res, bool cancel) {
    v1::TrainingJobRef ref;
    ref.set_id(req.matches[1].str());
    ProtoCall<v1::TrainingJob>(req, res, [&](grpc::ClientContext* c, v1::TrainingJob* out) {
      return cancel ? training->CancelTrainingJob(c, ref, out) : training->GetTrainingJob(c, ref, out);
    });
  }

  // POST /v1/completions/{request_id}/cancel: InferenceService.CancelGeneration for the caller.
  void Cancel(const httplib::Request& req, httplib::Response& res) {
    grpc::ClientContext context;
    if (!PrepareContext(req, &context, res)) return;
    v1::CancelGenerationRequest request;
    request.set_request_id(req.matches[1].str());
    v1::CancelGenerationResponse response;
    const grpc::Status s = inference->CancelGeneration(&context, request, &response);
    res.set_header("x-request-id", RequestIdOf(context, true));
    if (!s.ok()) return SendError(res, s.error_code(), s.error_message());
    res.set_content(CancelResponse(request.request_id(), response.calls()), kJson);
  }

  void Models(const httplib::Request& req, httplib::Response& res) {
    std::vector<v1::Prompt> all;
    v1::ListPromptsRequest list;
    list.set_page_size(1000);
    do {
      grpc::ClientContext context;
      if (!PrepareContext(req, &context, res)) return;
      v1::ListPromptsResponse page;
      const grpc::Status s = prompts->ListPrompts(&context, list, &page);
      res.set_header("x-request-id", RequestIdOf(context, true));
      if (!s.ok()) return SendError(res, s.error_code(), s.error_message());
      all.insert(all.end(), page.prompts().begin(), page.prompts().end());
      list.set_page_token(page.next_page_token());
    } while (!list.page_token().empty());
    res.set_content(ModelsResponse(all, UnixNow()), kJson);
  }
};

namespace {

// "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
  *host = listen.substr(0, colon);
  if (host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  char* end = nullptr;
  const long p = std::strtol(listen.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535) return false;
  *port = static_cast<int>(p);
  return true;
}

}  // namespace

core::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(const HttpGatewayOptions& options,
                                                                 std::shared_ptr<grpc::Channel> channel) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(options.listen, &host, &port)) {
    return core::InvalidArgumentError("--http-listen must be HOST:PORT, got '" + options.listen + "'");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->inference = v1::InferenceService::NewStub(channel);
  impl->prompts = v1::PromptService::NewStub(channel);
  impl->training = v1::TrainingService::NewStub(channel);
  Impl* self = impl.get();
  httplib::Server& http = impl->http;
  const int threads = std::max(1, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(options.max_body_bytes);
  http.Post("/v1/completions", [self](const httplib::Request& q, httplib::Response& r) { self->Completions(q, r); });
  http.Get("/v1/models", [self](const httplib::Request& q, httplib::Response& r) { self->Models(q, r); });
  // The cancel routes take a content reader (DropBody).
  http.Post(R"(/v1/completions/([^/]+)/cancel)",
            [self](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& read) {
              DropBody(q, read);
              self->Cancel(q, r);
            });
  http.Post("/v1/training/jobs", [self](const httplib::Request& q, httplib::Response& r) { self->StartTraining(q, r); });
  http.Get("/v1/training/jobs", [self](const httplib::Request& q, httplib::Response& r) {
    self->ProtoCall<v1::ListTrainingJobsResponse>(q, r, [self](grpc::ClientContext* c, v1::ListTrainingJobsResponse* out) {
      return self->training->ListTrainingJobs(c, v1::ListTrainingJobsRequest(), out);
    });
  });
  http.Get(R"(/v1/training/jobs/([^/]+))",
           [self](const httplib::Request& q, httplib::Response& r) { self->TrainingJob(q, r, /*cancel=*/false); });
  http.Post(R"(/v1/training/jobs/([^/]+)/cancel)",
            [self](const httplib::Request& q, httplib::Response& r, const httplib::ContentReader& read) {
              DropBody(q, read);
              self->TrainingJob(q, r, /*cancel=*/true);
            });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const grpc::StatusCode code =
        res.status == 404 ? grpc::StatusCode::NOT_FOUND
        : res.status == 413 ? grpc::StatusCode::RESOURCE_EXHAUSTED : grpc::StatusCode::INVALID_ARGUMENT;
    const int status = res.status;
    res.set_content(ErrorBody(code, status == 404 ? "no endpoint " + req.method + " " + req.path +
                                                        " (POST /v1/completions, POST /v1/completions/{request_id}/cancel, GET /v1/models, "
                                                        "POST and GET /v1/training/jobs, GET /v1/training/jobs/{id}, "
                                                        "POST /v1/training/jobs/{id}/cancel)"
                                    : status == 413 ? "the request body is too large"
                                                    : "the HTTP request is malformed (status " + std::to_string(status) + ")"),
                    kJson);
    res.status = status;
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    spdlog::error("http: {}", what);
    SendError(res, grpc::StatusCode::INTERNAL, "internal error: " + what);
  });
  if (options.on_request) {
    // A worker serves one request at a time: the start time can live in a thread_local.
    static thread_local std::chrono::steady_clock::time_point started;
    http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      started = std::chrono::steady_clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([on_request = options.on_request](const httplib::Request& req, const httplib::Response& res) {
      const std::string route = RouteOf(req.path);
      // A request refused before routing (malformed) was never stamped: it took no time of ours.
      const auto now = std::chrono::steady_clock::now();
      const double seconds = started == std::chrono::steady_clock::time_point() ? 0.0
                                                                                : std::chrono::duration<double>(now - started).count();
      started = std::chrono::steady_clock::time_point();
      on_request(route, res.status, seconds);
    });
  }
  impl->port = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (impl->port < 0) return core::UnavailableError("cannot listen for HTTP on " + options.listen);
  impl->listener = std::thread([self] { self->http.listen_after_bind(); });
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl)));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpGateway::~HttpGateway() { Stop(); }

int HttpGateway::port() const { return impl_->port; }

void HttpGateway::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->http.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

}  // namespace softserve::server
