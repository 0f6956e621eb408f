#include "store/pg_change_follower.h"

#include <poll.h>

#include <algorithm>
#include <memory>

namespace softserve::store {

PgChangeFollower::PgChangeFollower(std::string url, PgPromptStore* store, core::PromptRegistry* registry,
                                   std::chrono::milliseconds poll_interval)
    : url_(std::move(url)), store_(store), registry_(registry), poll_interval_(poll_interval) {
  applied_ = registry_->loaded_change_id();
  thread_ = std::thread([this] { Run(); });
}

PgChangeFollower::~PgChangeFollower() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool PgChangeFollower::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, d, [this] { return stop_; });
}

bool PgChangeFollower::CatchUp() {
  for (;;) {
    auto changes = store_->ChangesSince(applied_.load(), 500);
    if (!changes.ok()) return false;
    for (const PromptChange& c : *changes) {
      if (c.deleted) {
        registry_->ApplyDelete(c.key);
      } else {
        auto prompt = store_->Describe(c.key);  // values are read where they are first used
        if (prompt.ok()) {
          registry_->ApplyPut(*prompt);
        } else if (prompt.status().code() != core::StatusCode::kNotFound) {
          return false;  // read it again after reconnecting; a NotFound was deleted since
        }
      }
      applied_ = c.change_id;
    }
    if (changes->size() < 500) return true;
  }
}

void PgChangeFollower::Run() {
  std::unique_ptr<PgConnection> listen;
  std::chrono::milliseconds backoff(100);
  const std::chrono::milliseconds tick(100);  // how quickly Stop is noticed
  auto last_catch_up = std::chrono::steady_clock::now();
  bool catch_up = true;
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
    }
    if (listen == nullptr) {
      auto conn = PgConnection::Connect(url_);
      if (conn.ok() && (*conn)->Exec(std::string("LISTEN ") + PgPromptStore::kChannel).ok()) {
        listen = std::move(conn).value();
        catch_up = true;  // whatever happened while disconnected
        backoff = std::chrono::milliseconds(100);
      } else {
        connected_ = false;
        if (SleepFor(backoff)) return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        ++reconnects_;
        continue;
      }
    }
    if (catch_up || std::chrono::steady_clock::now() - last_catch_up >= poll_interval_) {
      if (!CatchUp()) {
        connected_ = false;
        listen.reset();
        continue;
      }
      connected_ = true;
      catch_up = false;
      last_catch_up = std::chrono::steady_clock::now();
    }
    pollfd p{listen->socket(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(tick.count()));
    auto notes = listen->TakeNotifications(PgPromptStore::kChannel);
    if (!notes.ok()) {
      connected_ = false;
      listen.reset();
      continue;
    }
    if (!notes->empty()) catch_up = true;
  }
}

}  // namespace softserve::store
