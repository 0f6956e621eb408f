#include "server/auth.h"

#include "core/common/sha256.h"

namespace softserve::server {

Authenticator::Authenticator(std::vector<TenantConfig> tenants) : tenants_(std::move(tenants)) {
  for (size_t i = 0; i < tenants_.size(); ++i) {
    by_key_hash_[tenants_[i].api_key_sha256] = i;
    by_name_[tenants_[i].name] = i;
  }
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
  auto found = by_key_hash_.find(core::Sha256Hex(value.substr(prefix.size())));
  if (found == by_key_hash_.end()) return core::UnauthenticatedError("unknown API key");
  return Caller{&tenants_[found->second]};
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
