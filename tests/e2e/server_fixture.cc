#include "tests/e2e/server_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/model/random_checkpoint.h"
#include "core/model/safetensors.h"
#include "tests/testing/reference_data.h"

namespace softserve::testing {

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  char tmpl[] = "/tmp/softserve_e2e_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  store_dir_ = options_.store_dir.empty() ? dir_ + "/store" : options_.store_dir;
  std::string tenants = "{\"tenants\": [";
  for (size_t i = 0; i < options_.tenants.size(); ++i) {
    const TenantSpec& t = options_.tenants[i];
    tenants += (i ? "," : "") + std::string("{\"name\": \"") + t.name + "\", \"api_key_sha256\": \"" +
               core::Sha256Hex(t.key) + "\", \"admin\": " + (t.admin ? "true" : "false") +
               ", \"max_prompts\": " + std::to_string(t.max_prompts) + ", \"max_prompt_bytes\": " +
               std::to_string(t.max_prompt_bytes) + ", \"max_inflight\": " + std::to_string(t.max_inflight) + "}";
  }
  tenants += "]}";
  EXPECT_TRUE(core::WriteFileDurably(dir_ + "/tenants.json", tenants).ok());
  std::vector<std::string> args = {std::string(SOFTSERVE_BIN_DIR) + "/softserve-server",
                                   "--model-dir", options_.model_dir,
                                   "--store-dir", store_dir_,
                                   "--listen", "127.0.0.1:0",
                                   "--metrics-listen", "127.0.0.1:0",
                                   "--port-file", dir_ + "/port",
                                   "--metrics-port-file", dir_ + "/metrics_port",
                                   "--tenants-file", dir_ + "/tenants.json",
                                   "--threads", "2",
                                   "--drain-notice-seconds", "0",
                                   "--log-level", "debug"};
  if (options_.http) args.insert(args.end(), {"--http-listen", "127.0.0.1:0", "--http-port-file", dir_ + "/http_port"});
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    const int log = ::open((dir_ + "/server.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Wait for the port file, then for readiness.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < give_up) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "server exited during start-up:\n" << Log();
      return;
    }
    auto p = core::ReadFileToString(dir_ + "/port");
    if (p.ok() && !p->empty()) {
      port_ = std::atoi(p->c_str());
      auto mp = core::ReadFileToString(dir_ + "/metrics_port");
      if (mp.ok()) metrics_port_ = std::atoi(mp->c_str());
      auto hp = core::ReadFileToString(dir_ + "/http_port");
      if (hp.ok()) http_port_ = std::atoi(hp->c_str());
      auto c = ClientWithKey("", std::chrono::seconds(5));
      auto h = c->Health("");
      if (h.ok() && h.value.status() == ::grpc::health::v1::HealthCheckResponse::SERVING) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "server did not become ready:\n" << Log();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Terminate(30);
  // A failed test shows the server's own account (an abort message, a sanitizer report).
  // A suite's shared server is deleted after its tests, where only the unit test knows of failures.
  if (std::getenv("SOFTSERVE_E2E_SHOW_LOG") || ::testing::Test::HasFailure() ||
      ::testing::UnitTest::GetInstance()->Failed()) {
    const std::string log = Log();
    const size_t keep = 20000;
    std::fprintf(stderr, "--- server log%s ---\n%s\n", log.size() > keep ? " (tail)" : "",
                 log.size() > keep ? log.substr(log.size() - keep).c_str() : log.c_str());
  }
  std::system(("rm -rf " + dir_).c_str());
}

int ServerProcess::Terminate(int seconds) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::shared_ptr<client::Client> ServerProcess::ClientWithKey(const std::string& key, std::chrono::milliseconds timeout) {
  client::ClientOptions o;
  o.target = target();
  o.api_key = key;
  o.timeout = timeout;
  o.max_attempts = 1;  // tests assert exact codes
  o.tls_root_ca_file = options_.tls_ca_file;
  o.tls_client_cert_file = options_.tls_client_cert_file;
  o.tls_client_key_file = options_.tls_client_key_file;
  return client::Client::Connect(o).value;
}

std::shared_ptr<client::Client> ServerProcess::ClientFor(const std::string& tenant, std::chrono::milliseconds timeout) {
  for (const TenantSpec& t : options_.tenants) {
    if (t.name == tenant) return ClientWithKey(t.key, timeout);
  }
  ADD_FAILURE() << "no tenant " << tenant;
  return nullptr;
}

std::string ServerProcess::Log() const {
  auto s = core::ReadFileToString(dir_ + "/server.log");
  return s.ok() ? *s : "";
}

namespace {

std::string WriteTextModel(const std::string& name, bool tied) {
  const std::string dir = ::testing::TempDir() + "/" + name + "_" + std::to_string(::getpid());
  auto config = core::ParseT5Config(
      std::string(R"({"vocab_size": 32128, "d_model": 64, "d_kv": 16, "num_heads": 4, "d_ff": 128, "num_layers": 2, )") +
      "\"tie_word_embeddings\": " + (tied ? "true" : "false") + "}");
  EXPECT_TRUE(config.ok());
  core::RandomCheckpointOptions o;
  o.seed = 11;
  EXPECT_TRUE(core::WriteRandomT5Checkpoint(*config, dir, o).ok());
  auto spm = core::ReadFileToString(TestDataDir() + "/t5-small/spiece.model");
  EXPECT_TRUE(core::WriteFileDurably(dir + "/spiece.model", *spm).ok());
  return dir;
}

}  // namespace

std::string TextModelDir() {
  static const std::string dir = WriteTextModel("softserve_text_model", true);
  return dir;
}

std::string VariedTextModelDir() {
  static const std::string dir = WriteTextModel("softserve_varied_text_model", false);
  return dir;
}

std::string RawPromptBytes(const std::vector<float>& values, int64_t rows, int64_t dim) {
  core::TensorToWrite t{"prompt", core::SafetensorsDtype::kF32, {rows, dim},
                        std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4)};
  return core::SerializeSafetensors({t}, {}).value();
}

namespace {

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

RawCallResult RawUnaryCall(const std::string& target, const std::string& method, const std::string& bytes,
                           const std::string& key, const std::vector<std::pair<std::string, std::string>>& metadata) {
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
  for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
  const grpc::ByteBuffer request = Buffer(bytes);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  RawCallResult r;
  r.status = done.get_future().get();
  for (const auto& [k, v] : context.GetServerInitialMetadata()) {
    r.initial_metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  for (const auto& [k, v] : context.GetServerTrailingMetadata()) {
    r.trailing_metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  std::vector<grpc::Slice> slices;
  if (r.status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& sl : slices) r.response.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  return r;
}

grpc::Status RawUnary(const std::string& target, const std::string& method, const std::string& bytes,
                      const std::string& key) {
  return RawUnaryCall(target, method, bytes, key, {}).status;
}

grpc::Status RawClientStream(const std::string& target, const std::string& method,
                             const std::vector<std::string>& messages, const std::string& key) {
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
  auto wait = [&cq] {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  auto call = stub.PrepareCall(&context, method, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = wait();
  for (const std::string& m : messages) {
    if (!ok) break;
    call->Write(Buffer(m), reinterpret_cast<void*>(2));
    ok = wait();
  }
  if (ok) {
    call->WritesDone(reinterpret_cast<void*>(3));
    wait();
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  wait();
  cq.Shutdown();
  void* tag;
  bool unused;
  while (cq.Next(&tag, &unused)) {
  }
  return status;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  (void)::send(fd, req.data(), req.size(), 0);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace softserve::testing
