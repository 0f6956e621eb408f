// PgChangeFollower: keeps one replica's PromptRegistry in step with the shared PostgreSQL store.
//
// A thread of its own LISTENs on PgPromptStore::kChannel with a connection of its own. On every
// notification, and every `poll_interval` in any case, it reads the change feed after the last
// change it applied and applies it in order: a put adds the version's description
// (PromptRegistry::ApplyPut; its values are read on first use), a delete removes it (ApplyDelete). When PostgreSQL goes away it
// reconnects with backoff (0.1 s doubling to 5 s) and catches up from the last applied change
// id, so a change made while this replica was cut off still reaches it; the registry keeps
// serving what it has meanwhile. It starts from the change id the registry's Load reflected.
// Thread-safety: the accessors may be called from any thread.
#ifndef SOFTSERVE_STORE_PG_CHANGE_FOLLOWER_H_
#define SOFTSERVE_STORE_PG_CHANGE_FOLLOWER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "core/prompts/prompt_registry.h"
#include "store/pg_prompt_store.h"

namespace softserve::store {

class PgChangeFollower {
 public:
  // `store` and `registry` must outlive the follower. Starts the thread.
  PgChangeFollower(std::string url, PgPromptStore* store, core::PromptRegistry* registry,
                   std::chrono::milliseconds poll_interval = std::chrono::seconds(5));
  ~PgChangeFollower();  // stops and joins the thread
  PgChangeFollower(const PgChangeFollower&) = delete;
  PgChangeFollower& operator=(const PgChangeFollower&) = delete;

  // Whether the LISTEN connection is up and the last catch-up succeeded.
  bool connected() const { return connected_.load(); }
  int64_t applied_change_id() const { return applied_.load(); }
  int64_t reconnects() const { return reconnects_.load(); }

 private:
  void Run();
  // Applies every change after applied_; false when the store could not be read.
  bool CatchUp();
  // Waits up to `d` unless stopping; true if stopping.
  bool SleepFor(std::chrono::milliseconds d);

  const std::string url_;
  PgPromptStore* const store_;
  core::PromptRegistry* const registry_;
  const std::chrono::milliseconds poll_interval_;
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> applied_{0};
  std::atomic<int64_t> reconnects_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace softserve::store

#endif  // SOFTSERVE_STORE_PG_CHANGE_FOLLOWER_H_
