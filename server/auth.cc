#include "server/auth.h"

#include <openssl/crypto.h>

#include "core/common/sha256.h"

namespace softserve::server {

Authenticator::Authenticator(std::vector<TenantConfig> tenants) : tenants_(std::move(tenants)) {
  for (size_t i = 0; i < tenants_.size(); ++i) by_name_[tenants_[i].name] = i;
}

core::StatusOr<Caller> Authenticator::Authenticate(const grpc::ServerContextBase& context) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return core::UnauthenticatedError("missing 'authorization: Bearer <api key>' metadata");
  }
  const std::string value(it->second.data(), it->second.size());
  const std::string prefix = "Bearer ";
  if (value.size() <= prefix.size() || value.compare(0, prefix.size(), prefix) != 0) {
    return core::UnauthenticatedError("authorization metadata must be 'Bearer <api key>'");
  }
  const std::string digest = core::Sha256Hex(value.substr(prefix.size()));
  const TenantConfig* match = nullptr;
  for (const TenantConfig& t : tenants_) {
    // Every digest is 64 hex characters (ParseTenants checks), so the sizes always agree.
    const bool equal = t.api_key_sha256.size() == digest.size() &&
                       CRYPTO_memcmp(t.api_key_sha256.data(), digest.data(), digest.size()) == 0;
    if (equal) match = &t;
  }
  if (match == nullptr) return core::UnauthenticatedError("unknown API key");
  return Caller{match};
}

core::StatusOr<std::string> Authenticator::TargetTenant(const Caller& caller, const std::string& requested) const {
  if (requested.empty() || requested == caller.name()) return caller.name();
  if (!caller.admin()) {
    return core::PermissionDeniedError("only an admin key may act on another tenant; leave 'tenant' empty");
  }
  if (by_name_.count(requested) == 0) return core::NotFoundError("no tenant named " + core::QuoteForMessage(requested));
  return requested;
}

const TenantConfig* Authenticator::Find(const std::string& tenant) const {
  auto it = by_name_.find(tenant);
  return it == by_name_.end() ? nullptr : &tenants_[it->second];
}

}  // namespace softserve::server
