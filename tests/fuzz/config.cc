// libFuzzer target: the server's JSON config file and tenants file (what an operator, or a
// Secret/ConfigMap someone else wrote, hands the server).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/prompts/prompt_names.h"
#include "server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  softserve::server::ServerConfig config;
  (void)softserve::server::ApplyServerConfigJson(text, &config);
  std::vector<softserve::server::TenantConfig> tenants;
  if (softserve::server::ParseTenants(text, &tenants).ok()) {
    for (const auto& t : tenants) {
      if (t.api_key_sha256.size() != 64 || !softserve::core::ValidateName(t.name, "tenant").ok()) std::abort();
    }
  }
  return 0;
}
