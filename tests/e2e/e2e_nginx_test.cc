// The multi-replica deployment as shipped: Debian's real nginx running deploy/nginx/nginx.conf
// (addresses substituted) in front of two server processes sharing one real PostgreSQL. A client
// talks only to nginx and keeps sending while each replica in turn gets SIGTERM (draining) and is
// started again on its port: no request fails, and every answer is Hugging Face's.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/common/file_util.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

namespace v1 = ::softserve::v1;
using Clock = std::chrono::steady_clock;

void Replace(std::string* s, const std::string& from, const std::string& to) {
  const size_t at = s->find(from);
  ASSERT_NE(at, std::string::npos) << "deploy/nginx/nginx.conf no longer contains " << from;
  s->replace(at, from.size(), to);
}

// nginx on deploy/nginx/nginx.conf, its replicas and listener moved to loopback ports.
class Nginx {
 public:
  Nginx(int port, int replica_a, int replica_b) { Start(port, replica_a, replica_b); }
  ~Nginx() {
    if (pid_ > 0) {
      ::kill(pid_, SIGQUIT);
      ::waitpid(pid_, nullptr, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }

 private:
  void Start(int port, int replica_a, int replica_b) {
    char tmpl[] = "/tmp/softserve-nginx-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0777);  // workers (nobody when run as root) write temp files here
    auto conf = core::ReadFileToString(std::string(SOFTSERVE_SOURCE_DIR) + "/deploy/nginx/nginx.conf");
    ASSERT_TRUE(conf.ok());
    std::string c = *conf;
    Replace(&c, "softserve-a:50051", "127.0.0.1:" + std::to_string(replica_a));
    Replace(&c, "softserve-b:50051", "127.0.0.1:" + std::to_string(replica_b));
    Replace(&c, "listen 50051 http2;", "listen 127.0.0.1:" + std::to_string(port) + " http2;");
    Replace(&c, "http {", "http {\n  access_log off;\n  client_body_temp_path " + dir_ + "/body;\n  proxy_temp_path " + dir_ +
                              "/proxy;\n  fastcgi_temp_path " + dir_ + "/fastcgi;\n  uwsgi_temp_path " + dir_ +
                              "/uwsgi;\n  scgi_temp_path " + dir_ + "/scgi;");
    c = "pid " + dir_ + "/nginx.pid;\nerror_log " + dir_ + "/error.log;\n" + c;
    ASSERT_TRUE(core::WriteFileDurably(dir_ + "/nginx.conf", c).ok());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/sbin/nginx", "nginx", "-p", dir_.c_str(), "-c", (dir_ + "/nginx.conf").c_str(), "-g",
              "daemon off;", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Ready when the port accepts connections.
    for (int i = 0; i < 200; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port));
      const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      ::close(fd);
      if (up) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto log = core::ReadFileToString(dir_ + "/error.log");
    ADD_FAILURE() << "nginx did not start: " << (log.ok() ? *log : "");
  }

  std::string dir_;
  pid_t pid_ = -1;
};

testing::ServerOptions ReplicaOptions(const std::string& url, int port) {
  testing::ServerOptions o{testing::ReferenceModelDir("t5-tiny-v1_0")};
  o.extra_args = {"--store-url", url, "--listen", "127.0.0.1:" + std::to_string(port), "--drain-notice-seconds", "1",
                  "--drain-seconds", "10"};
  return o;
}

TEST(E2eNginxTest, RollingRestartBehindNginxFailsNoRequest) {
  ASSERT_EQ(::access("/usr/sbin/nginx", X_OK), 0) << "nginx is not installed (scripts/install-deps.sh installs it)";
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.ok()) << pg.error();
  const int port_a = testing::FreeLoopbackPort(), port_b = testing::FreeLoopbackPort(), port_lb = testing::FreeLoopbackPort();
  auto a = std::make_unique<testing::ServerProcess>(ReplicaOptions(pg.url(), port_a));
  auto b = std::make_unique<testing::ServerProcess>(ReplicaOptions(pg.url(), port_b));
  Nginx nginx(port_lb, port_a, port_b);

  client::ClientOptions co;
  co.target = "127.0.0.1:" + std::to_string(port_lb);
  co.api_key = "alice-key";
  co.timeout = std::chrono::seconds(30);
  co.max_attempts = 5;
  co.initial_backoff = std::chrono::milliseconds(100);
  auto lb = client::Client::Connect(co).value;
  ASSERT_NE(lb, nullptr);

  testing::ReferenceCases cases("t5-tiny-v1_0");
  client::PromptUpload raw;
  raw.name = "task-a";
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  auto up = lb->UploadPrompt(raw);
  ASSERT_TRUE(up.ok()) << up.status.error_message();
  v1::GenerateRequest req;
  const auto ids = cases.Ids("generate.row0.input_ids");
  req.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  req.mutable_prompt()->set_name("task-a");
  req.mutable_parameters()->set_max_new_tokens(12);
  const auto expected = cases.Ids("prompt.a.row0.greedy");
  const std::vector<int64_t> want(expected.begin() + 1, expected.end());
  for (auto* r : {a.get(), b.get()}) {  // both replicas have it before the traffic starts
    auto direct = r->ClientFor("alice");
    const auto start = Clock::now();
    while (!direct->Generate(req).ok() && Clock::now() - start < std::chrono::seconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, wrong{0};
  std::string first_failure;
  std::thread traffic([&] {
    while (!stop) {
      auto g = lb->Generate(req);
      if (!g.ok()) {
        if (failed++ == 0) first_failure = std::to_string(g.status.error_code()) + " " + g.status.error_message();
      } else if (std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()) !=
                 want) {
        ++wrong;
      } else {
        ++ok;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Each replica in turn: SIGTERM (drain), exit, start again on the same port.
  for (auto* r : {&a, &b}) {
    const int before = ok.load();
    const int port = *r == a ? port_a : port_b;
    EXPECT_EQ((*r)->Terminate(60), 0);
    r->reset();
    EXPECT_GT(ok.load(), before) << "no request was served while a replica was restarting";
    *r = std::make_unique<testing::ServerProcess>(ReplicaOptions(pg.url(), port));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  stop = true;
  traffic.join();
  EXPECT_EQ(failed.load(), 0) << "first failure: " << first_failure;
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), 20);
  std::printf("rolling restart behind nginx: %d requests served, %d failed\n", ok.load(), failed.load());
}

}  // namespace
}  // namespace softserve
