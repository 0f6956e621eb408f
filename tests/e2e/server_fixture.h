// Starts the real softserve-server binary on 127.0.0.1 (port 0) as a child process, with its
// own temp store and tenants file, and connects the real client library to it.
#ifndef SOFTSERVE_TESTS_E2E_SERVER_FIXTURE_H_
#define SOFTSERVE_TESTS_E2E_SERVER_FIXTURE_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/softserve_client.h"

namespace softserve::testing {

struct TenantSpec {
  std::string name;
  std::string key;
  bool admin = false;
  int64_t max_prompts = 100;
  int64_t max_prompt_bytes = 64 << 20;
  int64_t max_inflight = 64;
};

struct ServerOptions {
  std::string model_dir;
  std::vector<TenantSpec> tenants = {{"alice", "alice-key"}, {"bob", "bob-key"}, {"root", "root-key", true}};
  std::vector<std::string> extra_args;
  std::string store_dir;  // empty: a fresh temp dir
  bool http = false;      // also serve the HTTP/JSON front-end (http_port())
  // When the server uses TLS: how the fixture's own clients (readiness checks, ClientFor) connect.
  std::string tls_ca_file, tls_client_cert_file, tls_client_key_file;
};

class ServerProcess {
 public:
  // Starts and waits until the server reports SERVING (fails the test on timeout).
  explicit ServerProcess(ServerOptions options);
  ~ServerProcess();  // SIGTERM + wait (SIGKILL after 30 s)

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  int http_port() const { return http_port_; }  // 0 without ServerOptions::http
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& store_dir() const { return store_dir_; }
  pid_t pid() const { return pid_; }
  // A client authenticated as `tenant` (empty key: no authorization metadata).
  std::shared_ptr<client::Client> ClientFor(const std::string& tenant, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  std::shared_ptr<client::Client> ClientWithKey(const std::string& key, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SIGTERM and the exit status (waits up to `seconds`); -1 on timeout.
  int Terminate(int seconds = 60);
  std::string Log() const;

 private:
  ServerOptions options_;
  std::string dir_, store_dir_;
  pid_t pid_ = -1;
  int port_ = 0, metrics_port_ = 0, http_port_ = 0;
};

// Small random T5 with the real t5-small tokenizer (vocab 32128), built once per process.
std::string TextModelDir();
// The same with an untied output layer: greedy decoding writes varied text, not pad after pad.
std::string VariedTextModelDir();

// Raw prompt / safetensors bytes helpers.
std::string RawPromptBytes(const std::vector<float>& values, int64_t rows, int64_t dim);

// Sends `bytes`, unparsed, as the request of the unary `method` ("/softserve.v1.X/Method").
// A raw unary call with extra metadata: its status, the server's initial and trailing metadata
// and the serialized response.
struct RawCallResult {
  grpc::Status status;
  std::multimap<std::string, std::string> initial_metadata, trailing_metadata;
  std::string response;
};
RawCallResult RawUnaryCall(const std::string& target, const std::string& method, const std::string& bytes,
                           const std::string& key, const std::vector<std::pair<std::string, std::string>>& metadata);
grpc::Status RawUnary(const std::string& target, const std::string& method, const std::string& bytes,
                      const std::string& key);
// Sends each of `messages` (raw bytes) on a client stream to `method`, half-closes, and returns
// the call's status.
grpc::Status RawClientStream(const std::string& target, const std::string& method,
                             const std::vector<std::string>& messages, const std::string& key);

// HTTP GET of 127.0.0.1:port/path; empty on failure.
std::string HttpGet(int port, const std::string& path);

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_E2E_SERVER_FIXTURE_H_
