// UploadWorkers: a small pool of threads that parse, validate and durably store finished
// uploads (SHA-256 over the spooled bytes, format parsing, residual folding, fsync), so that
// none of that runs on the gRPC threads that serve other tenants' calls. The queue is bounded
// in practice by UploadLimiter (one task per upload in progress).
// Thread-safe. The destructor calls Stop.
#ifndef SOFTSERVE_SERVER_UPLOAD_WORKERS_H_
#define SOFTSERVE_SERVER_UPLOAD_WORKERS_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "server/sync.h"

namespace softserve::server {

class UploadWorkers {
 public:
  explicit UploadWorkers(int threads);
  ~UploadWorkers();
  UploadWorkers(const UploadWorkers&) = delete;
  UploadWorkers& operator=(const UploadWorkers&) = delete;

  // Runs `task` on a worker thread (after Stop: on the calling thread).
  void Post(std::function<void()> task);
  // Runs the tasks already posted and joins the threads. Idempotent.
  void Stop();

 private:
  void Work();
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_UPLOAD_WORKERS_H_
