// A real PostgreSQL server (Debian's postgresql package) for one test: a fresh cluster in a
// temporary directory, listening on 127.0.0.1 at a free port, trust authentication for the user
// "softserve". PostgreSQL refuses to run as root, so when the test runs as root every server
// command runs as the `postgres` user (the package creates it). Stop/Start restart the same
// cluster (for outage tests); the destructor stops it and removes the directory.
#ifndef SOFTSERVE_TESTS_TESTING_POSTGRES_SERVER_H_
#define SOFTSERVE_TESTS_TESTING_POSTGRES_SERVER_H_

#include <string>

namespace softserve::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int FreeLoopbackPort();

class PostgresServer {
 public:
  // Creates and starts the cluster; check ok() (error() says what failed).
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  // libpq URL of database "postgres" as user "softserve".
  std::string url() const;

  // Fast shutdown / start again on the same port. False (and error() set) on failure.
  bool Stop();
  bool Start();

 private:
  int Run(const std::string& command);  // as the server's user; the exit status

  std::string bin_, dir_, error_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_POSTGRES_SERVER_H_
