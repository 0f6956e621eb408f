#include "tests/testing/postgres_server.h"

#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace softserve::testing {
namespace {

// The newest /usr/lib/postgresql/<version>/bin.
std::string FindBinDir() {
  glob_t g{};
  std::vector<std::string> dirs;
  if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) dirs.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (dirs.empty()) return "";
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);  // after "/usr/lib/postgresql/"
  });
  return dirs.back().substr(0, dirs.back().size() - 7);  // drop "/initdb"
}

}  // namespace

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}


PostgresServer::PostgresServer() {
  bin_ = FindBinDir();
  if (bin_.empty()) {
    error_ = "no PostgreSQL server binaries under /usr/lib/postgresql (scripts/install-deps.sh installs postgresql)";
    return;
  }
  char tmpl[] = "/tmp/softserve-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr || ::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      error_ = "running as root needs the postgres user (Debian's postgresql package creates it)";
      return;
    }
  }
  port_ = FreeLoopbackPort();
  if (Run(bin_ + "/initdb -D " + dir_ + "/data -A trust -U softserve -E UTF8 --locale=C --no-sync >" + dir_ +
          "/initdb.log 2>&1") != 0) {
    error_ = "initdb failed; see " + dir_ + "/initdb.log";
    return;
  }
  Start();
}

PostgresServer::~PostgresServer() {
  if (running_) Run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop >/dev/null 2>&1");
  if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
}

std::string PostgresServer::url() const {
  return "postgresql://softserve@127.0.0.1:" + std::to_string(port_) + "/postgres?connect_timeout=5";
}

int PostgresServer::Run(const std::string& command) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) ::_exit(126);
    }
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool PostgresServer::Start() {
  const std::string options = "-p " + std::to_string(port_) + " -k " + dir_ +
                              " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                              " -c full_page_writes=off";
  if (Run(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -o '" + options + "' -w -t 60 start >/dev/null 2>&1") != 0) {
    error_ = "pg_ctl start failed; see " + dir_ + "/server.log";
    return false;
  }
  running_ = true;
  return true;
}

bool PostgresServer::Stop() {
  if (Run(bin_ + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop >/dev/null 2>&1") != 0) {
    error_ = "pg_ctl stop failed; see " + dir_ + "/server.log";
    return false;
  }
  running_ = false;
  return true;
}

}  // namespace softserve::testing
