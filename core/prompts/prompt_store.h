// PromptStore: the embedded persistent store of soft prompts on local disk.
//
// Layout: <root>/t-<hex tenant>/p-<hex name>/v<version>.prompt, each file a safetensors file
// holding the [rows, d] float32 matrix and, in its metadata, the prompt's identity, format,
// creation time, notes and a SHA-256 over all of them plus the tensor bytes. Deletes leave no
// per-name residue: one file per tenant, <root>/t-<hex tenant>/deleted-high-water, records the
// highest version the tenant ever deleted (the registry numbers new versions above it, so a
// version is never reused), and a name directory left empty is removed. The store's size is
// therefore bounded by what is stored plus one small file per tenant, whatever a tenant
// deletes. Per-name "deleted" tombstones of older stores are folded into that file at load.
//
// Durability: Put and Delete return only after the data and the directory entries are on disk
// (temp file + fsync + rename + directory fsync, see WriteFileDurably). A crash at any point
// leaves each version either absent or complete; LoadAll skips and reports anything else
// (torn temp files are removed, corrupt or inconsistent files are left for inspection).
// Thread-safety: Put/Delete/LoadAll must not run concurrently (the registry serializes them).
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_STORE_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/prompts/prompt.h"

namespace softserve::core {

struct StoreLoadReport {
  std::vector<PromptPtr> prompts;
  // Highest version each tenant ever deleted (0 when none).
  std::map<std::string, int64_t> deleted_high_water;
  std::vector<std::pair<std::string, std::string>> skipped;  // (path, reason)
};

class PromptStore {
 public:
  // Creates `root` if needed. Internal/PermissionDenied if it cannot.
  static StatusOr<std::unique_ptr<PromptStore>> Open(const std::string& root);

  // Durably writes one prompt version. Errors: Internal, ResourceExhausted (disk full).
  Status Put(const Prompt& prompt);
  // Durably removes one version. First records `deleted_high_water` (the highest version the
  // tenant ever deleted, including this one) in the tenant's high-water file, so that no later
  // upload reuses a deleted version number even after a restart; removes the name's directory
  // when it is left empty. NotFound if absent.
  Status Delete(const PromptKey& key, int64_t deleted_high_water);
  // Reads every stored prompt (name directories in parallel, up to one thread per core). Never
  // fails on bad files: they are listed in `skipped`, sorted by path. Entries of the root whose
  // names start with '.' (the server's upload spool) are not the store's and are ignored.
  StatusOr<StoreLoadReport> LoadAll();

  const std::string& root() const { return root_; }
  std::string PathOf(const PromptKey& key) const;

 private:
  explicit PromptStore(std::string root) : root_(std::move(root)) {}
  std::string TenantDir(const std::string& tenant) const;
  std::string NameDir(const std::string& tenant, const std::string& name) const;
  void LoadNameDir(const std::string& dir, const std::string& tenant, const std::string& name,
                   StoreLoadReport* report, std::vector<std::string>* legacy_tombstones);
  // Folds old per-name tombstones into the tenants' high-water files, then removes them.
  void CompactTombstones(const std::vector<std::string>& tombstones, StoreLoadReport* report);

  std::string root_;
};

// The file format, exposed for tests: serializes / parses one prompt file.
std::string SerializePromptRecord(const Prompt& prompt);
StatusOr<PromptPtr> ParsePromptRecord(std::string_view bytes, const std::string& what);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_STORE_H_
