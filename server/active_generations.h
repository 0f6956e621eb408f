// The generations in progress, by tenant and request id, so that a client can end one early
// from another connection (InferenceService.CancelGeneration, HTTP's
// POST /v1/completions/{id}/cancel): the call then completes with what it has generated and
// FINISH_REASON_CANCELLED, instead of failing CANCELLED as a call its own client abandons does.
//
// Scope: a tenant reaches only its own calls; another tenant's id is as unknown as an id that
// never existed. Request ids are the client's x-request-id (request_id.h) and need not be
// unique: every call of the tenant with that id is ended.
//
// Thread-safe; registration and lookups hold one mutex for a map operation only.
#ifndef SOFTSERVE_SERVER_ACTIVE_GENERATIONS_H_
#define SOFTSERVE_SERVER_ACTIVE_GENERATIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/engine/request.h"

namespace softserve::server {

class ActiveGenerations {
 public:
  // Keeps a call registered until destroyed.
  class Registration {
   public:
    Registration(ActiveGenerations* owner, std::multimap<std::pair<std::string, std::string>, core::CancelFlag>::iterator it)
        : owner_(owner), it_(it) {}
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    ActiveGenerations* owner_;
    std::multimap<std::pair<std::string, std::string>, core::CancelFlag>::iterator it_;
  };

  // Registers a call of `tenant` with `request_id`; `end_early` is the flag its engine requests
  // share (core::GenerationRequest::end_early).
  std::unique_ptr<Registration> Register(const std::string& tenant, const std::string& request_id,
                                         core::CancelFlag end_early);
  // Sets end_early for every call of `tenant` with `request_id` in progress; returns how many
  // there were (0: none, which the caller reports as NOT_FOUND).
  int64_t EndEarly(const std::string& tenant, const std::string& request_id);
  int64_t size();

 private:
  std::mutex mu_;
  std::multimap<std::pair<std::string, std::string>, core::CancelFlag> calls_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_ACTIVE_GENERATIONS_H_
