// PgPromptStore: the shared prompt store in PostgreSQL, for many replicas serving one registry.
//
// Schema (created and migrated by Open; see kMigrations in the .cc): softserve_tenants (one row
// per tenant: the highest version it ever deleted), softserve_prompts (every stored version with
// everything the local store keeps: tenant, name, version, shape, dtype, format, source note,
// checksum, created time, and the float32 little-endian matrix), softserve_changes (an
// increasing change id per put and per deleted version, the feed replicas catch up from), and
// softserve_schema (applied migrations). Migrations run under a transaction-scoped advisory lock,
// so N replicas starting at once apply each exactly once.
//
// Versions are assigned inside the database: Insert locks the tenant's row (FOR UPDATE), so two
// replicas uploading the same name at the same moment get two distinct versions; the number is
// 1 + max(the name's latest version, the tenant's deleted high-water), as in the local store,
// so a version is never reused. Quotas are checked under the same lock. Every query names the
// tenant in its key and its WHERE clause. Each write is one transaction that also records its
// change and sends NOTIFY softserve_changes '<change id>': a crash at any point leaves all of it
// or none of it.
//
// Errors: Unavailable when PostgreSQL is unreachable (the message says so; the connection is
// re-tried once per call), ResourceExhausted naming a quota, NotFound, InvalidArgument for a
// record that fails validation, Internal for anything else. Thread-safe (one connection, used
// under a mutex).
#ifndef SOFTSERVE_STORE_PG_PROMPT_STORE_H_
#define SOFTSERVE_STORE_PG_PROMPT_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/prompts/prompt.h"
#include "core/prompts/prompt_registry.h"
#include "store/pg_connection.h"

namespace softserve::store {

// One entry of the change feed.
struct PromptChange {
  int64_t change_id = 0;
  core::PromptKey key;  // the version put or deleted
  bool deleted = false;
};

struct PgLoadReport {
  std::vector<core::PromptPtr> prompts;
  std::vector<std::pair<std::string, int64_t>> deleted_high_water;  // per tenant
  int64_t last_change_id = 0;  // everything up to it is in `prompts`
};

class PgPromptStore : public core::SharedPromptStore {
 public:
  static constexpr const char* kChannel = "softserve_changes";

  // Connects (libpq URL; the password from the URL, PGPASSWORD or a passfile) and applies
  // missing migrations. Unavailable if PostgreSQL cannot be reached.
  static core::StatusOr<std::unique_ptr<PgPromptStore>> Open(const std::string& url);

  // Stores a new version of tenant/name, numbered by the database (see above).
  core::StatusOr<core::PromptPtr> Insert(const std::string& tenant, const std::string& name,
                                         const core::NewPrompt& prompt, const core::PromptQuota& quota) override;
  // Removes one version (0: every version) and raises the tenant's deleted high-water. Returns
  // the versions removed; NotFound if there were none.
  core::StatusOr<std::vector<int64_t>> Delete(const std::string& tenant, const std::string& name,
                                              int64_t version) override;
  // One version (0: the latest). NotFound if absent.
  core::StatusOr<core::PromptPtr> Get(const core::PromptKey& key);
  // Everything stored, and the change id it is consistent with (one snapshot).
  core::StatusOr<PgLoadReport> LoadAll();
  // Every prompt's description (no values: Prompt::Description) and the change id they reflect.
  core::StatusOr<core::SharedStoreLoad> LoadShared() override;
  // One version's description, without its values (version > 0). NotFound if absent.
  core::StatusOr<core::PromptPtr> Describe(const core::PromptKey& key);
  // One version with its values (version > 0). NotFound if absent.
  core::StatusOr<core::PromptPtr> Fetch(const core::PromptKey& key) override;
  // Changes after `change_id`, oldest first, at most `limit`.
  core::StatusOr<std::vector<PromptChange>> ChangesSince(int64_t change_id, int limit);
  // The newest applied migration.
  core::StatusOr<int64_t> SchemaVersion();

  const std::string& redacted_url() const { return conn_->redacted_url(); }

 private:
  explicit PgPromptStore(std::unique_ptr<PgConnection> conn) : conn_(std::move(conn)) {}
  core::Status Migrate();
  // Runs `body` in a transaction on a healthy connection (reconnecting once if needed);
  // rolls back when it fails.
  template <typename Fn>
  core::Status InTransaction(Fn&& body);

  std::mutex mu_;
  std::unique_ptr<PgConnection> conn_;
};

// The schema's migrations, in order (exposed for tests).
const std::vector<std::string>& PgPromptStoreMigrations();

}  // namespace softserve::store

#endif  // SOFTSERVE_STORE_PG_PROMPT_STORE_H_
