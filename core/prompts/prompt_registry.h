// PromptRegistry: every tenant's soft prompts, by name and version, backed by a PromptStore.
//
// Reads (Get, List, Usage) are lock-free: they load an immutable snapshot published with an
// atomic shared_ptr store. Writes (Create, Delete) are serialized by one mutex, write through
// the store durably, then publish a new snapshot that shares every untouched tenant's map.
// Prompts are handed out as shared_ptr<const Prompt>: a prompt deleted while requests use it
// stays valid (and its memory held) until the last of them finishes, then it is freed.
// Versions are never reused, not even after a delete: a new version of a name is 1 + the higher
// of the name's latest stored version and the highest version its tenant ever deleted (so
// versions count up from 1 until the tenant deletes something, and jump past deleted numbers
// after that). The store keeps that high-water mark as one number per tenant.
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_REGISTRY_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/common/mutex.h"
#include "core/common/thread_annotations.h"
#include "core/prompts/prompt.h"
#include "core/prompts/prompt_store.h"
#include "core/prompts/prompt_value_cache.h"

namespace softserve::core {

// A parsed, validated matrix ready to register (see prompt_formats.h).
struct NewPrompt {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> values;
  PromptFormat format = PromptFormat::kRaw;
  std::string note;
};

// Per-tenant limits checked atomically with the write; < 0 means unlimited.
struct PromptQuota {
  int64_t max_prompts = -1;  // stored versions
  int64_t max_bytes = -1;    // sum of the stored matrices' bytes
};

struct TenantUsage {
  int64_t prompts = 0;
  int64_t bytes = 0;
};

struct PromptListPage {
  std::vector<PromptPtr> prompts;  // latest version of each name, in name order
  std::string next_page_token;     // empty on the last page
};

// What a registry loads from a shared store: every prompt's description (Prompt::Description, no
// values), and the change id it reflects.
struct SharedStoreLoad {
  std::vector<PromptPtr> prompts;
  int64_t last_change_id = 0;
};

// A store shared by several registries (one per replica): it numbers versions and checks quotas
// itself, atomically with each write, so that replicas never hand out the same version or let a
// tenant past its quota together. Implemented over PostgreSQL by store/pg_prompt_store.h; its
// changes reach the other replicas through ApplyPut/ApplyDelete (store/pg_change_follower.h).
// Errors as the implementation documents (Unavailable when unreachable).
class SharedPromptStore {
 public:
  virtual ~SharedPromptStore() = default;
  // One version (version > 0) with its values. NotFound if absent.
  virtual StatusOr<PromptPtr> Fetch(const PromptKey& key) = 0;
  virtual StatusOr<PromptPtr> Insert(const std::string& tenant, const std::string& name, const NewPrompt& prompt,
                                     const PromptQuota& quota) = 0;
  // version 0: every version. The versions removed; NotFound if none.
  virtual StatusOr<std::vector<int64_t>> Delete(const std::string& tenant, const std::string& name,
                                                int64_t version) = 0;
  virtual StatusOr<SharedStoreLoad> LoadShared() = 0;
};

class PromptRegistry {
 public:
  // `store` may be null for a memory-only registry (tests, benchmarks).
  explicit PromptRegistry(std::unique_ptr<PromptStore> store);
  // A replica's registry over a shared store (must outlive the registry): Create and Delete
  // write through it (it numbers versions and checks quotas); Load reads every description.
  // Values are held in a byte-bounded LRU of `value_cache_bytes` (PromptValueCache) and read
  // from the store on first use by Get: List and Versions return descriptions (no values).
  PromptRegistry(SharedPromptStore* shared, int64_t value_cache_bytes);
  static constexpr int64_t kDefaultValueCacheBytes = int64_t{1} << 30;

  // Start-up: loads everything the store holds, replacing the current contents. Corrupt or
  // partial files are skipped and listed in the report, never served.
  StatusOr<StoreLoadReport> Load();

  // Registers a new version of tenant/name (see the class comment for its number).
  // Returns InvalidArgument for bad names or an inconsistent matrix, ResourceExhausted naming
  // the quota that would be exceeded, or the store's error (ResourceExhausted for a full disk,
  // else Internal) with the message prefix "prompt store: " (then nothing changed). The prompt
  // is durable when this returns OK.
  StatusOr<PromptPtr> Create(const std::string& tenant, const std::string& name, NewPrompt prompt,
                             const PromptQuota& quota = {});

  // version 0 = latest, with its values. NotFound if the tenant has no such name or version.
  // Over a shared store, a version whose values are not cached is read from the store (a cold
  // miss); Unavailable when the store cannot be reached then.
  StatusOr<PromptPtr> Get(const std::string& tenant, const std::string& name, int64_t version = 0) const;
  // The value cache over a shared store (null otherwise), for metrics.
  const PromptValueCache* value_cache() const { return values_.get(); }
  // All versions, oldest first (empty if none).
  std::vector<PromptPtr> Versions(const std::string& tenant, const std::string& name) const;
  // Names starting with `prefix`, page_size in 1..1000, page_token from the previous page.
  // InvalidArgument for a bad page size or token.
  StatusOr<PromptListPage> List(const std::string& tenant, const std::string& prefix, int page_size,
                                const std::string& page_token) const;
  // version 0 = every version. NotFound if absent; store errors ("prompt store: " prefix) leave
  // the snapshot matching what is on disk. Needs no new disk space, so it works on a full disk.
  // `deleted`, when given, receives how many versions this call removed (also on a partial
  // failure: the versions removed before the error stay removed).
  Status Delete(const std::string& tenant, const std::string& name, int64_t version = 0, int64_t* deleted = nullptr);

  // Changes another replica made to the shared store, applied to this registry's snapshot (a
  // prompt with values also warms the value cache).
  // Idempotent: a version already present (ApplyPut) or already gone (ApplyDelete) is ignored,
  // so a change seen both as this replica's own write and in the change feed applies once.
  void ApplyPut(const PromptPtr& prompt);
  void ApplyDelete(const PromptKey& key);
  // The change id of the shared store that the last Load reflected (0 for a local store).
  int64_t loaded_change_id() const;

  TenantUsage Usage(const std::string& tenant) const;
  int64_t total_prompts() const;
  int64_t total_bytes() const;

 private:
  struct TenantPrompts {
    std::map<std::string, std::vector<PromptPtr>> by_name;  // versions ascending
    TenantUsage usage;
  };
  struct Snapshot {
    std::map<std::string, std::shared_ptr<const TenantPrompts>> tenants;
    int64_t prompts = 0;
    int64_t bytes = 0;
  };

  std::shared_ptr<const Snapshot> Current() const;
  // Publishes `snapshot` with tenant's map replaced by `prompts` (erased when empty).
  void Publish(const Snapshot& base, const std::string& tenant, TenantPrompts prompts)
      SOFTSERVE_REQUIRES(write_mu_);

  // Adds or removes one version in the tenant's map and publishes. Returns false if nothing
  // changed (already present / absent).
  bool InsertLocked(const PromptPtr& prompt) SOFTSERVE_REQUIRES(write_mu_);
  bool EraseLocked(const PromptKey& key) SOFTSERVE_REQUIRES(write_mu_);
  StatusOr<PromptPtr> CreateShared(const std::string& tenant, const std::string& name, NewPrompt prompt,
                                   const PromptQuota& quota);
  Status DeleteShared(const std::string& tenant, const std::string& name, int64_t version, int64_t* deleted);

  // The prompt with values for a description (cache, else the shared store).
  StatusOr<PromptPtr> WithValues(const PromptPtr& description) const;

  std::unique_ptr<PromptStore> store_;
  SharedPromptStore* const shared_ = nullptr;
  const std::unique_ptr<PromptValueCache> values_;  // shared store only
  mutable Mutex write_mu_;
  int64_t loaded_change_id_ SOFTSERVE_GUARDED_BY(write_mu_) = 0;
  std::map<std::string, int64_t> deleted_high_water_ SOFTSERVE_GUARDED_BY(write_mu_);
  std::shared_ptr<const Snapshot> snapshot_;  // accessed only with std::atomic_load/store
};

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_REGISTRY_H_
