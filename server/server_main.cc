// softserve-server: loads the model, the tokenizer and the prompt store, starts the engine and
// the gRPC services, reports readiness after a warm-up batch, and drains on SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/engine/t5_runner.h"
#include "core/model/random_checkpoint.h"
#include "server/health_monitor.h"
#include "server/http_gateway.h"
#include "server/inference_service.h"
#include "server/model_service.h"
#include "server/prompt_service.h"
#include "server/raw_message.h"
#include "server/server_config.h"
#include "server/training_service.h"
#include "server/upload_workers.h"
#include "store/pg_change_follower.h"
#include "store/pg_prompt_store.h"

namespace softserve::server {
namespace {

// SIGTERM/SIGINT write one byte here; the main thread waits on the read end. A handler (rather
// than sigwait) because library constructors start threads (OpenBLAS's pool) before main can
// block signals, and the kernel may deliver the signal to any of them.
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const char b = static_cast<char>(sig);
  (void)!::write(g_signal_pipe[1], &b, 1);
}

int InstallSignalHandlers() {
  if (g_signal_pipe[0] < 0 && ::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: the main thread's read in WaitForSignal returns EINTR and retries, which also
  // lets ThreadSanitizer run a handler it deferred.
  sa.sa_flags = 0;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  return 0;
}

// Threads the server starts (gRPC's, the engine's) inherit a mask without SIGTERM/SIGINT, so the
// signal goes to the main thread (or to a library thread started before main): under
// ThreadSanitizer a signal sent to a thread parked in a raw futex syscall would never be handled.
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

void SetTerminationSignalsBlocked(bool blocked) {
  const sigset_t set = TerminationSignals();
  ::pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

int WaitForSignal() {
  SetTerminationSignalsBlocked(false);  // pending ones are handled now
  char b = 0;
  while (::read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  return b;
}

// A start-up failure: the exit code and what to print.
struct StartError {
  int code;
  std::string message;
};

std::shared_ptr<grpc::ServerCredentials> Credentials(const ServerConfig& c, std::string* error) {
  if (c.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  auto cert = core::ReadFileToString(c.tls_cert_file), key = core::ReadFileToString(c.tls_key_file);
  if (!cert.ok() || !key.ok()) {
    *error = "cannot read the TLS certificate or key";
    return nullptr;
  }
  grpc::SslServerCredentialsOptions opts(c.tls_client_ca_file.empty()
                                             ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                             : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!c.tls_client_ca_file.empty()) {
    auto ca = core::ReadFileToString(c.tls_client_ca_file);
    if (!ca.ok()) {
      *error = "cannot read the client CA file";
      return nullptr;
    }
    opts.pem_root_certs = *ca;
  }
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(opts);
}

// A tiny batch through the real engine before reporting ready.
core::Status WarmUp(core::Engine* engine, const core::T5Config& config) {
  std::vector<std::future<core::StatusOr<core::GenerationResult>>> futures;
  for (int i = 0; i < 2; ++i) {
    core::GenerationRequest g;
    g.common.tenant = "warm-up";
    g.common.input_ids = {std::min<int64_t>(3 + i, config.vocab_size - 1), config.eos_token_id};
    g.params.max_new_tokens = 2;
    auto p = std::make_shared<std::promise<core::StatusOr<core::GenerationResult>>>();
    futures.push_back(p->get_future());
    engine->Submit(std::move(g), [p](core::StatusOr<core::GenerationResult> r) { p->set_value(std::move(r)); });
  }
  for (auto& f : futures) SOFTSERVE_RETURN_IF_ERROR(f.get().status());
  return core::OkStatus();
}

// Logs the engine's step failures (they are retried and isolated; see engine.h).
class EngineEvents : public core::EngineObserver {
 public:
  explicit EngineEvents(ServerMetrics* metrics) : metrics_(metrics) {}
  void OnStep(const core::StepStats& stats) override { metrics_->OnStep(stats); }
  void OnStepFailure(const core::Status& status, int64_t jobs) override {
    spdlog::error("engine step failed ({}); retrying its {} requests in halves to isolate the failure", status.ToString(),
                  jobs);
  }

 private:
  ServerMetrics* metrics_;
};

// Everything the server runs with, in construction order (destroyed in reverse).
struct Runtime {
  ServerConfig config;
  std::shared_ptr<const core::T5Model> model;
  bool random_weights = false;
  std::unique_ptr<core::Tokenizer> tokenizer;
  std::unique_ptr<store::PgPromptStore> shared_store;  // --store-url
  std::unique_ptr<core::PromptRegistry> registry;
  std::unique_ptr<store::PgChangeFollower> follower;    // destroyed before the registry
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<EngineEvents> events;
  ActiveGenerations active;  // outlives the engine, whose last callbacks unregister calls
  std::unique_ptr<core::Engine> engine;
  std::atomic<bool> draining{false};
  InflightLimiter inflight;
  std::unique_ptr<UploadLimiter> uploads;
  std::unique_ptr<UploadWorkers> upload_workers;
  std::unique_ptr<Authenticator> auth;
  ServiceContext sc;
};

std::optional<StartError> LoadModelAndTokenizer(Runtime* rt) {
  const ServerConfig& config = rt->config;
  auto device = core::ParseDevice(config.device);
  auto dtype = core::ParseDType(config.dtype);
  auto cpu_gemm = core::ParseCpuGemm(config.cpu_gemm);
  for (const core::Status& s : {device.status(), dtype.status(), cpu_gemm.status()}) {
    if (!s.ok()) return StartError{2, s.message()};
  }
  core::ModelOptions mo{*device, *dtype, static_cast<int>(config.threads), *cpu_gemm};
  spdlog::info("loading model from {} on {} {}", config.model_dir, config.device, config.dtype);
  auto model = core::T5Model::Load(config.model_dir, mo);
  if (!model.ok()) return StartError{1, model.status().ToString()};
  rt->model = std::move(model).value();
  rt->random_weights = core::IsRandomCheckpoint(config.model_dir);
  if (rt->random_weights) {
    spdlog::warn("*** {} holds RANDOM WEIGHTS (a stand-in for a real checkpoint): outputs are meaningless; "
                 "scripts/download-model.sh fetches real T5 weights where a network allows ***", config.model_dir);
  }
  const std::string tok_path = config.tokenizer.empty() ? core::JoinPath(config.model_dir, "spiece.model") : config.tokenizer;
  if (config.tokenizer.empty() && !core::PathExists(tok_path)) {
    spdlog::warn("no tokenizer ({} absent): text inputs are rejected, token ids work", tok_path);
    return std::nullopt;
  }
  auto t = core::Tokenizer::Load(tok_path);
  if (!t.ok()) return StartError{1, t.status().ToString()};
  rt->tokenizer = std::move(t).value();
  if (rt->tokenizer->vocab_size() > rt->model->config().vocab_size) {
    return StartError{1, "the tokenizer has " + std::to_string(rt->tokenizer->vocab_size()) + " ids but the model only " +
                             std::to_string(rt->model->config().vocab_size)};
  }
  spdlog::info("tokenizer {} ({} ids) loaded through {}", tok_path, rt->tokenizer->vocab_size(), rt->tokenizer->shim_path());
  return std::nullopt;
}

// True if SIGTERM or SIGINT arrives within `d` (they are blocked during start-up).
bool TerminationWithin(std::chrono::milliseconds d) {
  const sigset_t set = TerminationSignals();
  const timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>((d.count() % 1000) * 1000000)};
  return ::sigtimedwait(&set, nullptr, &ts) > 0;
}

// --store-url: the shared PostgreSQL store. While PostgreSQL is unreachable the replica waits,
// not listening (so not ready), retrying with backoff, until it comes or SIGTERM.
std::optional<StartError> OpenSharedRegistry(Runtime* rt) {
  const std::string& url = rt->config.store_url;
  std::chrono::milliseconds backoff(250);
  for (;;) {
    auto store = store::PgPromptStore::Open(url);
    if (store.ok()) {
      rt->shared_store = std::move(store).value();
      break;
    }
    if (store.status().code() != core::StatusCode::kUnavailable) return StartError{1, store.status().ToString()};
    spdlog::warn("prompt store: {}; retrying in {} ms (not ready until it answers)", store.status().message(),
                 backoff.count());
    if (TerminationWithin(backoff)) return StartError{1, "stopped while waiting for the prompt store"};
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  rt->registry = std::make_unique<core::PromptRegistry>(rt->shared_store.get(), rt->config.shared_prompt_cache_bytes);
  auto report = rt->registry->Load();
  if (!report.ok()) return StartError{1, report.status().ToString()};
  rt->follower = std::make_unique<store::PgChangeFollower>(url, rt->shared_store.get(), rt->registry.get());
  spdlog::info("prompt store {} (shared): {} prompt versions loaded, following changes after {}",
               rt->shared_store->redacted_url(), rt->registry->total_prompts(), rt->registry->loaded_change_id());
  return std::nullopt;
}

std::optional<StartError> LoadRegistry(Runtime* rt) {
  if (!rt->config.store_url.empty()) return OpenSharedRegistry(rt);
  auto store = core::PromptStore::Open(rt->config.store_dir);
  if (!store.ok()) return StartError{1, store.status().ToString()};
  rt->registry = std::make_unique<core::PromptRegistry>(std::move(store).value());
  auto report = rt->registry->Load();
  if (!report.ok()) return StartError{1, report.status().ToString()};
  for (const auto& [path, reason] : report->skipped) spdlog::warn("prompt store: skipped {}: {}", path, reason);
  spdlog::info("prompt store {}: {} prompt versions loaded, {} files skipped (SHA-256: {})", rt->config.store_dir,
               rt->registry->total_prompts(), report->skipped.size(), core::Sha256::Implementation());
  return std::nullopt;
}

void BuildContext(Runtime* rt) {
  ServiceContext& sc = rt->sc;
  sc.config = &rt->config;
  sc.engine = rt->engine.get();
  sc.registry = rt->registry.get();
  sc.tokenizer = rt->tokenizer.get();
  sc.auth = rt->auth.get();
  sc.metrics = rt->metrics.get();
  sc.inflight = &rt->inflight;
  sc.uploads = rt->uploads.get();
  sc.upload_workers = rt->upload_workers.get();
  sc.active = &rt->active;
  sc.draining = &rt->draining;
  sc.model_config = rt->model->config();
  sc.random_weights = rt->random_weights;
  sc.prompt_limits.d_model = rt->model->config().d_model;
  sc.prompt_limits.max_rows = rt->config.engine.max_prompt_rows;
  sc.prompt_limits.max_file_bytes = rt->config.max_upload_bytes;
  sc.prompt_limits.serving_dtype = rt->model->options().dtype;
  sc.prompt_limits.max_abs_value = rt->config.max_prompt_abs_value;
  if (rt->follower) sc.store_connected = [f = rt->follower.get()] { return f->connected(); };
}

std::optional<StartError> StartEngine(Runtime* rt) {
  ServerConfig& config = rt->config;
  if (!config.dev_api_key.empty()) {
    spdlog::warn("DEVELOPMENT KEY IN USE: tenant 'default' (admin) accepts the key given by --dev-api-key; "
                 "configure tenants with --tenants-file for anything else");
    TenantConfig dev{"default", core::Sha256Hex(config.dev_api_key), true, 10000, 1 << 30, 256, 1 << 24, 8};
    config.tenants.push_back(dev);
  }
  if (config.tenants.empty()) return StartError{2, "no tenants configured: give --tenants-file (or --dev-api-key for development)"};
  if (auto e = LoadModelAndTokenizer(rt)) return e;
  if (auto e = LoadRegistry(rt)) return e;
  auto metrics = ServerMetrics::Create(config.metrics_listen);
  if (!metrics.ok()) return StartError{1, metrics.status().message()};
  rt->metrics = std::move(metrics).value();
  rt->events = std::make_unique<EngineEvents>(rt->metrics.get());
  auto runner = core::T5Runner::Create(rt->model, config.runner, &config.engine);
  if (!runner.ok()) return StartError{1, runner.status().message()};
  spdlog::info("KV cache: {} rows of {} encoder and {} decoder positions, {} MiB on {}",
               (*runner)->kv_cache().shape().slots, (*runner)->kv_cache().shape().encoder_tokens,
               (*runner)->kv_cache().shape().decoder_tokens,
               (*runner)->kv_cache().CapacityBytes() >> 20, (*runner)->Describe());
  rt->engine = std::make_unique<core::Engine>(std::move(runner).value(), config.engine, rt->events.get());
  rt->uploads = std::make_unique<UploadLimiter>(config.max_concurrent_uploads, [m = rt->metrics.get()](int64_t n) {
    m->SetUploadsInProgress(n);
  });
  rt->upload_workers = std::make_unique<UploadWorkers>(2);
  rt->auth = std::make_unique<Authenticator>(config.tenants);
  BuildContext(rt);
  return std::nullopt;
}

// Drains on SIGTERM: readiness off and new work refused at once, a notice period for load
// balancers, then running work gets until the grace deadline.
void Drain(Runtime* rt, grpc::Server* server, HttpGateway* http, HealthMonitor* health, int sig) {
  const ServerConfig& config = rt->config;
  spdlog::info("signal {}: draining (NOT_SERVING; new work refused; running requests get up to {} s after a {} s notice)",
               sig, config.drain_seconds, config.drain_notice_seconds);
  rt->draining = true;
  health->SetReady(false);
  const auto notice = std::chrono::duration<double>(config.drain_notice_seconds);
  std::this_thread::sleep_for(notice);
  const auto grace = std::chrono::duration_cast<core::Clock::duration>(std::chrono::duration<double>(config.drain_seconds));
  rt->engine->Shutdown(core::Clock::now() + grace);
  rt->upload_workers->Stop();  // uploads being stored finish; later ones finish on their own thread
  if (http != nullptr) http->Stop();  // its calls went through the gRPC services and are done too
  // Every inference RPC has completed by now (the engine finished or failed it). gRPC's
  // Shutdown waits out its deadline in this configuration even when idle, so keep it short.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

// The HTTP front-end, when --http-listen asks for one: its calls reach the gRPC services through
// an in-process channel (no network hop, same handlers).
core::StatusOr<std::unique_ptr<HttpGateway>> StartHttp(const ServerConfig& config, grpc::Server* server,
                                                       ServerMetrics* metrics) {
  if (config.http_listen.empty()) return std::unique_ptr<HttpGateway>();
  HttpGatewayOptions o;
  o.listen = config.http_listen;
  o.threads = static_cast<int>(config.http_threads);
  o.max_timeout_seconds = config.http_max_timeout_seconds;
  o.max_body_bytes = static_cast<size_t>(config.max_message_bytes);
  o.on_request = [metrics](const std::string& route, int status, double seconds) {
    metrics->RecordHttp(route, status, seconds);
  };
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  SOFTSERVE_ASSIGN_OR_RETURN(auto http, HttpGateway::Start(o, server->InProcessChannel(args)));
  if (!config.http_port_file.empty()) (void)core::WriteFileDurably(config.http_port_file, std::to_string(http->port()));
  return http;
}

int Run(int argc, char** argv) {
  if (InstallSignalHandlers() != 0) return std::fprintf(stderr, "softserve-server: cannot install signal handlers\n"), 1;
  SetTerminationSignalsBlocked(true);
  auto fail = [](int code, const std::string& msg) {
    std::fprintf(stderr, "softserve-server: %s\n", msg.c_str());
    return code;
  };
  std::string help;
  auto loaded = LoadServerConfig(argc, argv, &help);
  if (!loaded.ok()) return fail(2, loaded.status().message());
  if (!help.empty()) return std::fputs(help.c_str(), stdout), 0;
  Runtime rt;
  rt.config = std::move(loaded).value();
  spdlog::set_level(spdlog::level::from_str(rt.config.log_level));
  InstallProtobufLogHandler();
  if (auto e = StartEngine(&rt)) return fail(e->code, e->message);

  PromptServiceImpl prompt_service(&rt.sc);
  InferenceServiceImpl inference_service(&rt.sc);
  ModelServiceImpl model_service(&rt.sc);
  TrainingJobs training_jobs(&rt.sc, rt.model);
  TrainingServiceImpl training_service(&rt.sc, &training_jobs);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::string cred_error;
  auto creds = Credentials(rt.config, &cred_error);
  if (!creds) return fail(1, cred_error);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(rt.config.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(rt.config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(rt.config.max_message_bytes));
  builder.RegisterService(&prompt_service);
  builder.RegisterService(&inference_service);
  builder.RegisterService(&model_service);
  builder.RegisterService(&training_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return fail(1, "cannot listen on " + rt.config.listen);
  HealthMonitor health(server.get(), rt.engine.get(), rt.registry.get(), rt.metrics.get(), rt.config.watchdog_seconds,
                       rt.sc.store_connected);
  if (!rt.config.metrics_port_file.empty()) {
    (void)core::WriteFileDurably(rt.config.metrics_port_file, std::to_string(rt.metrics->port()));
  }
  auto http = StartHttp(rt.config, server.get(), rt.metrics.get());  // its port file first: readers wait for the gRPC one
  if (!http.ok()) return fail(1, http.status().message());
  if (!rt.config.port_file.empty()) (void)core::WriteFileDurably(rt.config.port_file, std::to_string(port));
  if (core::Status s = WarmUp(rt.engine.get(), rt.model->config()); !s.ok()) return fail(1, "warm-up batch failed: " + s.ToString());
  // Again: libraries loaded since (glog via libtorch installs a SIGTERM handler that re-raises)
  // may have replaced ours.
  if (InstallSignalHandlers() != 0) return fail(1, "cannot install signal handlers");
  health.SetReady(true);
  spdlog::info("softserve ready: gRPC on port {} ({}), HTTP on {}, metrics on port {}, {} tenants", port,
               rt.config.tls_cert_file.empty() ? "plaintext" : "TLS",
               *http ? "port " + std::to_string((*http)->port()) : std::string("no port"), rt.metrics->port(),
               rt.config.tenants.size());
  Drain(&rt, server.get(), http->get(), &health, WaitForSignal());
  spdlog::info("drained; exiting");
  return 0;
}

}  // namespace
}  // namespace softserve::server

int main(int argc, char** argv) {
  try {
    return softserve::server::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "softserve-server: internal error: %s\n", e.what());
    return 1;
  }
}
