// softserve-server: loads the model, the tokenizer and the prompt store, starts the engine and
// the gRPC services, reports readiness after a warm-up batch, and drains on SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <condition_variable>
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
#include "server/inference_service.h"
#include "server/model_service.h"
#include "server/prompt_service.h"
#include "server/server_config.h"

namespace softserve::server {
namespace {

const char* const kServices[] = {"softserve.v1.InferenceService", "softserve.v1.PromptService",
                                 "softserve.v1.ModelService"};

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
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  return 0;
}

int WaitForSignal() {
  char b = 0;
  while (::read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  return b;
}

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "softserve-server: %s\n", msg.c_str());
  return code;
}

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

void SetHealth(grpc::Server* server, bool serving) {
  auto* health = server->GetHealthCheckService();
  health->SetServingStatus("", serving);
  for (const char* s : kServices) health->SetServingStatus(s, serving);
  health->SetServingStatus("liveness", true);  // the process answers: alive, ready or not
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

int Run(int argc, char** argv) {
  if (InstallSignalHandlers() != 0) return Fail(1, "cannot install signal handlers");

  std::string help;
  auto loaded = LoadServerConfig(argc, argv, &help);
  if (!loaded.ok()) return Fail(2, loaded.status().message());
  if (!help.empty()) {
    std::fputs(help.c_str(), stdout);
    return 0;
  }
  ServerConfig config = std::move(loaded).value();
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  if (!config.dev_api_key.empty()) {
    spdlog::warn("DEVELOPMENT KEY IN USE: tenant 'default' (admin) accepts the key given by --dev-api-key; "
                 "configure tenants with --tenants-file for anything else");
    config.tenants.push_back({"default", core::Sha256Hex(config.dev_api_key), true, 10000, 1 << 30, 256});
  }
  if (config.tenants.empty()) return Fail(2, "no tenants configured: give --tenants-file (or --dev-api-key for development)");

  auto device = core::ParseDevice(config.device);
  auto dtype = core::ParseDType(config.dtype);
  if (!device.ok() || !dtype.ok()) return Fail(2, !device.ok() ? device.status().message() : dtype.status().message());
  core::ModelOptions mo{*device, *dtype, static_cast<int>(config.threads)};
  spdlog::info("loading model from {} on {} {}", config.model_dir, config.device, config.dtype);
  auto model_or = core::T5Model::Load(config.model_dir, mo);
  if (!model_or.ok()) return Fail(1, model_or.status().ToString());
  std::shared_ptr<const core::T5Model> model = std::move(model_or).value();
  const bool random = core::IsRandomCheckpoint(config.model_dir);
  if (random) {
    spdlog::warn("*** {} holds RANDOM WEIGHTS (a stand-in for a real checkpoint): outputs are meaningless; "
                 "scripts/download-model.sh fetches real T5 weights where a network allows ***", config.model_dir);
  }

  std::unique_ptr<core::Tokenizer> tokenizer;
  const std::string tok_path = config.tokenizer.empty() ? core::JoinPath(config.model_dir, "spiece.model") : config.tokenizer;
  if (!config.tokenizer.empty() || core::PathExists(tok_path)) {
    auto t = core::Tokenizer::Load(tok_path);
    if (!t.ok()) return Fail(1, t.status().ToString());
    tokenizer = std::move(t).value();
    if (tokenizer->vocab_size() > model->config().vocab_size) {
      return Fail(1, "the tokenizer has " + std::to_string(tokenizer->vocab_size()) + " ids but the model only " +
                         std::to_string(model->config().vocab_size));
    }
    spdlog::info("tokenizer {} ({} ids) loaded through {}", tok_path, tokenizer->vocab_size(), tokenizer->shim_path());
  } else {
    spdlog::warn("no tokenizer ({} absent): text inputs are rejected, token ids work", tok_path);
  }

  auto store = core::PromptStore::Open(config.store_dir);
  if (!store.ok()) return Fail(1, store.status().ToString());
  core::PromptRegistry registry(std::move(store).value());
  auto report = registry.Load();
  if (!report.ok()) return Fail(1, report.status().ToString());
  for (const auto& [path, reason] : report->skipped) spdlog::warn("prompt store: skipped {}: {}", path, reason);
  spdlog::info("prompt store {}: {} prompt versions loaded, {} files skipped", config.store_dir,
               registry.total_prompts(), report->skipped.size());

  auto metrics = ServerMetrics::Create(config.metrics_listen);
  if (!metrics.ok()) return Fail(1, metrics.status().message());
  core::Engine engine(std::make_unique<core::T5Runner>(model), config.engine, metrics->get());

  std::atomic<bool> draining{false};
  InflightLimiter inflight;
  Authenticator auth(config.tenants);
  ServiceContext sc;
  sc.config = &config;
  sc.engine = &engine;
  sc.registry = &registry;
  sc.tokenizer = tokenizer.get();
  sc.auth = &auth;
  sc.metrics = metrics->get();
  sc.inflight = &inflight;
  sc.draining = &draining;
  sc.model_config = model->config();
  sc.random_weights = random;
  sc.prompt_limits.d_model = model->config().d_model;
  sc.prompt_limits.max_rows = config.engine.max_prompt_rows;
  sc.prompt_limits.max_file_bytes = config.max_upload_bytes;
  sc.prompt_limits.serving_dtype = *dtype;

  PromptServiceImpl prompt_service(&sc);
  InferenceServiceImpl inference_service(&sc);
  ModelServiceImpl model_service(&sc);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::string cred_error;
  auto creds = Credentials(config, &cred_error);
  if (!creds) return Fail(1, cred_error);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  builder.RegisterService(&prompt_service);
  builder.RegisterService(&inference_service);
  builder.RegisterService(&model_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return Fail(1, "cannot listen on " + config.listen);
  SetHealth(server.get(), false);
  if (!config.metrics_port_file.empty()) {
    (void)core::WriteFileDurably(config.metrics_port_file, std::to_string((*metrics)->port()));
  }
  if (!config.port_file.empty()) (void)core::WriteFileDurably(config.port_file, std::to_string(port));

  if (core::Status s = WarmUp(&engine, model->config()); !s.ok()) return Fail(1, "warm-up batch failed: " + s.ToString());
  // Again: libraries loaded since (glog via libtorch installs a SIGTERM handler that re-raises)
  // may have replaced ours.
  if (InstallSignalHandlers() != 0) return Fail(1, "cannot install signal handlers");
  SetHealth(server.get(), true);
  spdlog::info("softserve ready: gRPC on port {} ({}), metrics on port {}, {} tenants", port,
               config.tls_cert_file.empty() ? "plaintext" : "TLS", (*metrics)->port(), config.tenants.size());

  std::mutex gauges_mu;
  std::condition_variable gauges_cv;
  bool stop_gauges = false;
  std::thread gauges([&] {
    std::unique_lock<std::mutex> l(gauges_mu);
    while (!gauges_cv.wait_for(l, std::chrono::seconds(1), [&] { return stop_gauges; })) {
      (*metrics)->SetQueueDepth(engine.queue_depth());
      (*metrics)->SetRunningRows(engine.running_rows());
      (*metrics)->SetRegistry(registry.total_prompts(), registry.total_bytes());
    }
  });

  const int sig = WaitForSignal();
  spdlog::info("signal {}: draining (NOT_SERVING; running requests get up to {} s)", sig, config.drain_seconds);
  draining = true;
  SetHealth(server.get(), false);
  const auto grace = std::chrono::duration_cast<core::Clock::duration>(std::chrono::duration<double>(config.drain_seconds));
  engine.Shutdown(core::Clock::now() + grace);
  // Every inference RPC has completed by now (the engine finished or failed it). gRPC's
  // Shutdown waits out its deadline in this configuration even when idle, so keep it short.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  {
    std::lock_guard<std::mutex> l(gauges_mu);
    stop_gauges = true;
  }
  gauges_cv.notify_all();
  gauges.join();
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
