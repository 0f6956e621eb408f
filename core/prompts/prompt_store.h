// PromptStore: the embedded persistent store of soft prompts on local disk.
//
// Layout: <root>/t-<hex tenant>/p-<hex name>/v<version>.prompt, each file a safetensors file
// holding the [rows, d] float32 matrix and, in its metadata, the prompt's identity, format,
// creation time, notes and a SHA-256 over all of them plus the tensor bytes. A deleted name
// leaves <dir>/deleted recording the highest version it reached, so versions are never reused.
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
  // Highest version ever used per tenant/name (from prompts and tombstones).
  std::map<std::pair<std::string, std::string>, int64_t> high_water;
  std::vector<std::pair<std::string, std::string>> skipped;  // (path, reason)
};

class PromptStore {
 public:
  // Creates `root` if needed. Internal/PermissionDenied if it cannot.
  static StatusOr<std::unique_ptr<PromptStore>> Open(const std::string& root);

  // Durably writes one prompt version. Errors: Internal, ResourceExhausted (disk full).
  Status Put(const Prompt& prompt);
  // Durably removes one version. First records `high_water` (the highest version the name ever
  // had) in the name's tombstone, so that no later upload reuses a deleted version number even
  // after a restart. NotFound if absent.
  Status Delete(const PromptKey& key, int64_t high_water);
  // Reads every stored prompt (name directories in parallel, up to one thread per core). Never
  // fails on bad files: they are listed in `skipped`, sorted by path.
  StatusOr<StoreLoadReport> LoadAll();

  const std::string& root() const { return root_; }
  std::string PathOf(const PromptKey& key) const;

 private:
  explicit PromptStore(std::string root) : root_(std::move(root)) {}
  std::string NameDir(const std::string& tenant, const std::string& name) const;
  void LoadNameDir(const std::string& dir, const std::string& tenant, const std::string& name,
                   StoreLoadReport* report);

  std::string root_;
};

// The file format, exposed for tests: serializes / parses one prompt file.
std::string SerializePromptRecord(const Prompt& prompt);
StatusOr<PromptPtr> ParsePromptRecord(std::string_view bytes, const std::string& what);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_STORE_H_
