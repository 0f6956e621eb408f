// Authenticator: maps `authorization: Bearer <key>` metadata to a tenant.
//
// Keys are configured only as SHA-256 digests and never logged. Thread-safe (immutable after
// construction).
#ifndef SOFTSERVE_SERVER_AUTH_H_
#define SOFTSERVE_SERVER_AUTH_H_

#include <map>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "core/common/status.h"
#include "server/server_config.h"

namespace softserve::server {

struct Caller {
  const TenantConfig* tenant = nullptr;
  const std::string& name() const { return tenant->name; }
  bool admin() const { return tenant->admin; }
};

class Authenticator {
 public:
  explicit Authenticator(std::vector<TenantConfig> tenants);

  // Returns Unauthenticated when the metadata is missing, malformed or names no tenant.
  core::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& context) const;
  // The tenant a request acts on: `requested` empty means the caller's own; naming another
  // tenant needs an admin key (PermissionDenied) and a configured tenant (NotFound).
  core::StatusOr<std::string> TargetTenant(const Caller& caller, const std::string& requested) const;
  const TenantConfig* Find(const std::string& tenant) const;
  const std::vector<TenantConfig>& tenants() const { return tenants_; }

 private:
  std::vector<TenantConfig> tenants_;
  std::map<std::string, size_t> by_name_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_AUTH_H_
