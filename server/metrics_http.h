// MetricsHttpServer: serves GET /metrics (Prometheus text format 0.0.4) from a prometheus-cpp
// registry on its own thread. prometheus-cpp's civetweb-based Exposer fails to start in a
// process that has libtorch among its load-time dependencies (mg_start returns null after a
// successful bind, with no diagnostic), so this minimal responder replaces it: one request per
// connection, GET only, bounded request size.
#ifndef SOFTSERVE_SERVER_METRICS_HTTP_H_
#define SOFTSERVE_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <prometheus/registry.h>

#include "core/common/status.h"

namespace softserve::server {

class MetricsHttpServer {
 public:
  // Binds `listen` ("host:port", port 0 picks one) and starts serving. Unavailable if the
  // address cannot be bound.
  static core::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  std::shared_ptr<prometheus::Registry> registry);
  ~MetricsHttpServer();  // stops and joins
  int port() const { return port_; }

 private:
  MetricsHttpServer(int fd, int port, std::shared_ptr<prometheus::Registry> registry);
  void Serve();
  void Handle(int client);

  int fd_;
  int port_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_METRICS_HTTP_H_
