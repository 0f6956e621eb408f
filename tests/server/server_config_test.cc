#include "server/server_config.h"

#include <gtest/gtest.h>

#include <regex>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "server/auth.h"
#include "tests/testing/temp_dir.h"

namespace softserve::server {
namespace {

core::StatusOr<ServerConfig> Load(std::vector<std::string> args, std::string* help = nullptr) {
  std::string unused;
  std::vector<char*> argv = {const_cast<char*>("softserve-server")};
  for (auto& a : args) argv.push_back(a.data());
  return LoadServerConfig(static_cast<int>(argv.size()), argv.data(), help ? help : &unused);
}

// The help line of `flag` shows `value` as its default. Debian 12's CLI11 writes
// "--listen TEXT=0.0.0.0:50051", Debian 13's "--listen TEXT [0.0.0.0:50051]".
bool HelpShowsDefault(const std::string& help, const std::string& flag, const std::string& value) {
  const size_t at = help.find("  " + flag + " ");
  if (at == std::string::npos) return false;
  const std::string line = help.substr(at, help.find('\n', at) - at);
  return line.find("=" + value) != std::string::npos || line.find("[" + value + "]") != std::string::npos;
}

TEST(ServerConfigTest, FileThenFlagsOnTopAndHelpListsDefaults) {
  testing::ScopedTempDir dir;
  const std::string path = dir.File("cfg.json");
  ASSERT_TRUE(core::WriteFileDurably(path, R"({"listen": "1.2.3.4:5", "limits": {"max_batch_rows": 7, "max_queue": 9}})").ok());
  auto c = Load({"--config", path, "--max-queue", "11"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "1.2.3.4:5");
  EXPECT_EQ(c->engine.max_rows, 7);
  EXPECT_EQ(c->engine.max_queue, 11);  // the flag wins
  std::string help;
  ASSERT_TRUE(Load({"--help"}, &help).ok());
  for (const char* opt : {"--listen", "--model-dir", "--store-dir", "--tenants-file", "--drain-seconds", "--max-batch-rows",
                          "--tls-cert-file", "--dtype", "--device"}) {
    EXPECT_NE(help.find(opt), std::string::npos) << opt;
  }
  EXPECT_TRUE(HelpShowsDefault(help, "--listen", "0.0.0.0:50051")) << help;
  EXPECT_TRUE(HelpShowsDefault(help, "--metrics-listen", "127.0.0.1:9090")) << "metrics on loopback by default";
}

TEST(ServerConfigTest, RejectsTyposBadTenantsAndHalfTls) {
  testing::ScopedTempDir dir;
  const std::string path = dir.File("bad.json");
  ASSERT_TRUE(core::WriteFileDurably(path, R"({"limits": {"max_batchrows": 7}})").ok());
  EXPECT_NE(Load({"--config", path}).status().message().find("max_batchrows"), std::string::npos);
  EXPECT_FALSE(Load({"--frobnicate"}).ok());
  EXPECT_NE(Load({"--tls-cert-file", "x"}).status().message().find("go together"), std::string::npos);
  std::vector<TenantConfig> t;
  EXPECT_NE(ParseTenants(R"({"tenants": [{"name": "a", "api_key_sha256": "secret-in-clear"}]})", &t).message().find("64 lower-case hex"),
            std::string::npos);
  t.clear();
  const std::string h = core::Sha256Hex("k");
  EXPECT_NE(ParseTenants(R"({"tenants": [{"name": "a", "api_key_sha256": ")" + h + R"("}, {"name": "b", "api_key_sha256": ")" + h + R"("}]})", &t)
                .message()
                .find("share an API key"),
            std::string::npos);
  t.clear();
  EXPECT_FALSE(ParseTenants(R"({"tenants": [{"name": "../x", "api_key_sha256": ")" + h + R"("}]})", &t).ok());
}

// The KV cache budget: bytes or a fraction of free device memory, from flags or the JSON file,
// and never both.
TEST(ServerConfigTest, KvCacheBudgetFlags) {
  auto bytes = Load({"--kv-cache-bytes", "1073741824", "--prompt-cache-bytes", "1000"});
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(bytes->runner.kv_cache_bytes, int64_t{1} << 30);
  EXPECT_EQ(bytes->runner.prompt_cache_bytes, 1000);
  testing::ScopedTempDir dir;
  const std::string path = dir.File("kv.json");
  ASSERT_TRUE(core::WriteFileDurably(path, R"({"limits": {"kv_cache_memory_fraction": 0.8}})").ok());
  auto fraction = Load({"--config", path});
  ASSERT_TRUE(fraction.ok()) << fraction.status().ToString();
  EXPECT_DOUBLE_EQ(fraction->runner.kv_cache_memory_fraction, 0.8);
  EXPECT_NE(Load({"--config", path, "--kv-cache-bytes", "1000"}).status().message().find("only one of"),
            std::string::npos);
  EXPECT_FALSE(Load({"--kv-cache-memory-fraction", "1.5"}).ok());
}

// No working secret ships: the example tenants file and the Kubernetes Secret hold placeholders
// the server refuses, naming the command that makes a real key.
TEST(ServerConfigTest, ShippedTenantFilesArePlaceholdersThatCannotAuthenticate) {
  auto example = core::ReadFileToString(std::string(SOFTSERVE_SOURCE_DIR) + "/deploy/config/tenants.example.json");
  ASSERT_TRUE(example.ok());
  std::vector<TenantConfig> t;
  const core::Status s = ParseTenants(*example, &t);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("softserve keygen"), std::string::npos) << s.message();
  auto secret = core::ReadFileToString(std::string(SOFTSERVE_SOURCE_DIR) + "/deploy/k8s/secret.yaml");
  ASSERT_TRUE(secret.ok());
  EXPECT_NE(secret->find("REPLACE-WITH-THE-DIGEST"), std::string::npos);
  EXPECT_FALSE(std::regex_search(*secret, std::regex("[0-9a-f]{64}"))) << "a usable digest in the Secret";
}

TEST(AuthenticatorTest, TargetTenantRules) {
  Authenticator auth({{"alice", core::Sha256Hex("a"), false}, {"root", core::Sha256Hex("r"), true}});
  Caller alice{auth.Find("alice")}, root{auth.Find("root")};
  EXPECT_EQ(*auth.TargetTenant(alice, ""), "alice");
  EXPECT_EQ(*auth.TargetTenant(alice, "alice"), "alice");
  EXPECT_EQ(auth.TargetTenant(alice, "root").status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(*auth.TargetTenant(root, "alice"), "alice");
  EXPECT_EQ(auth.TargetTenant(root, "nobody").status().code(), core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace softserve::server
