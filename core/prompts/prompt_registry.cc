#include "core/prompts/prompt_registry.h"

#include <algorithm>
#include <chrono>

#include "core/prompts/prompt_names.h"

namespace softserve::core {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PromptRegistry::PromptRegistry(std::unique_ptr<PromptStore> store)
    : store_(std::move(store)), snapshot_(std::make_shared<const Snapshot>()) {}

PromptRegistry::PromptRegistry(SharedPromptStore* shared, int64_t value_cache_bytes)
    : shared_(shared),
      values_(std::make_unique<PromptValueCache>(value_cache_bytes)),
      snapshot_(std::make_shared<const Snapshot>()) {}

std::shared_ptr<const PromptRegistry::Snapshot> PromptRegistry::Current() const {
  return std::atomic_load(&snapshot_);
}

void PromptRegistry::Publish(const Snapshot& base, const std::string& tenant, TenantPrompts prompts) {
  auto next = std::make_shared<Snapshot>(base);
  if (auto it = next->tenants.find(tenant); it != next->tenants.end()) {
    next->prompts -= it->second->usage.prompts;
    next->bytes -= it->second->usage.bytes;
  }
  next->prompts += prompts.usage.prompts;
  next->bytes += prompts.usage.bytes;
  if (prompts.by_name.empty()) {
    next->tenants.erase(tenant);
  } else {
    next->tenants[tenant] = std::make_shared<const TenantPrompts>(std::move(prompts));
  }
  std::atomic_store(&snapshot_, std::shared_ptr<const Snapshot>(std::move(next)));
}

namespace {

// Every tenant's map from a flat list of prompts.
template <typename Snapshot, typename TenantPrompts>
std::shared_ptr<Snapshot> BuildSnapshot(const std::vector<PromptPtr>& prompts) {
  std::map<std::string, TenantPrompts> tenants;
  for (const PromptPtr& p : prompts) {
    TenantPrompts& t = tenants[p->key().tenant];
    t.by_name[p->key().name].push_back(p);
    ++t.usage.prompts;
    t.usage.bytes += p->bytes();
  }
  auto next = std::make_shared<Snapshot>();
  for (auto& [tenant, t] : tenants) {
    for (auto& [name, versions] : t.by_name) {
      std::sort(versions.begin(), versions.end(),
                [](const PromptPtr& a, const PromptPtr& b) { return a->key().version < b->key().version; });
    }
    next->prompts += t.usage.prompts;
    next->bytes += t.usage.bytes;
    next->tenants[tenant] = std::make_shared<const TenantPrompts>(std::move(t));
  }
  return next;
}

}  // namespace

StatusOr<StoreLoadReport> PromptRegistry::Load() {
  MutexLock lock(&write_mu_);
  StoreLoadReport report;
  if (shared_ != nullptr) {
    SOFTSERVE_ASSIGN_OR_RETURN(SharedStoreLoad load, shared_->LoadShared());
    report.prompts = std::move(load.prompts);
    loaded_change_id_ = load.last_change_id;
  } else if (store_ != nullptr) {
    SOFTSERVE_ASSIGN_OR_RETURN(report, store_->LoadAll());
    deleted_high_water_ = report.deleted_high_water;
  } else {
    return report;
  }
  std::atomic_store(&snapshot_, std::shared_ptr<const Snapshot>(BuildSnapshot<Snapshot, TenantPrompts>(report.prompts)));
  return report;
}

int64_t PromptRegistry::loaded_change_id() const {
  MutexLock lock(&write_mu_);
  return loaded_change_id_;
}

bool PromptRegistry::InsertLocked(const PromptPtr& prompt) {
  std::shared_ptr<const Snapshot> snap = Current();
  const PromptKey& key = prompt->key();
  TenantPrompts mine;
  if (auto it = snap->tenants.find(key.tenant); it != snap->tenants.end()) mine = *it->second;
  std::vector<PromptPtr>& versions = mine.by_name[key.name];
  auto at = std::lower_bound(versions.begin(), versions.end(), key.version,
                             [](const PromptPtr& p, int64_t v) { return p->key().version < v; });
  if (at != versions.end() && (*at)->key().version == key.version) return false;
  versions.insert(at, prompt);
  ++mine.usage.prompts;
  mine.usage.bytes += prompt->bytes();
  Publish(*snap, key.tenant, std::move(mine));
  return true;
}

bool PromptRegistry::EraseLocked(const PromptKey& key) {
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(key.tenant);
  if (t == snap->tenants.end()) return false;
  auto n = t->second->by_name.find(key.name);
  if (n == t->second->by_name.end()) return false;
  auto v = std::find_if(n->second.begin(), n->second.end(),
                        [&](const PromptPtr& p) { return p->key().version == key.version; });
  if (v == n->second.end()) return false;
  TenantPrompts mine = *t->second;
  std::vector<PromptPtr>& versions = mine.by_name[key.name];
  --mine.usage.prompts;
  mine.usage.bytes -= (*v)->bytes();
  versions.erase(versions.begin() + (v - n->second.begin()));
  if (versions.empty()) mine.by_name.erase(key.name);
  Publish(*snap, key.tenant, std::move(mine));
  if (values_ != nullptr) values_->Erase(key);
  return true;
}

void PromptRegistry::ApplyPut(const PromptPtr& prompt) {
  MutexLock lock(&write_mu_);
  if (values_ != nullptr && prompt->has_values()) {
    if (InsertLocked(prompt->DescriptionOnly())) values_->Put(prompt);
    return;
  }
  InsertLocked(prompt);
}

void PromptRegistry::ApplyDelete(const PromptKey& key) {
  MutexLock lock(&write_mu_);
  EraseLocked(key);
}

StatusOr<PromptPtr> PromptRegistry::CreateShared(const std::string& tenant, const std::string& name,
                                                 NewPrompt prompt, const PromptQuota& quota) {
  SOFTSERVE_ASSIGN_OR_RETURN(PromptPtr created, shared_->Insert(tenant, name, prompt, quota));
  MutexLock lock(&write_mu_);
  InsertLocked(created->DescriptionOnly());  // the change feed may have brought it first
  values_->Put(created);
  return created;
}

Status PromptRegistry::DeleteShared(const std::string& tenant, const std::string& name, int64_t version,
                                    int64_t* deleted) {
  auto removed = shared_->Delete(tenant, name, version);
  if (removed.status().code() == StatusCode::kNotFound) {
    return NotFoundError(version == 0 ? "no prompt named " + QuoteForMessage(name)
                                      : "prompt " + QuoteForMessage(name) + " has no version " + std::to_string(version));
  }
  SOFTSERVE_RETURN_IF_ERROR(removed.status());
  MutexLock lock(&write_mu_);
  for (int64_t v : *removed) EraseLocked(PromptKey{tenant, name, v});
  if (deleted != nullptr) *deleted = static_cast<int64_t>(removed->size());
  return OkStatus();
}

StatusOr<PromptPtr> PromptRegistry::Create(const std::string& tenant, const std::string& name,
                                           NewPrompt prompt, const PromptQuota& quota) {
  SOFTSERVE_RETURN_IF_ERROR(ValidateName(tenant, "tenant"));
  SOFTSERVE_RETURN_IF_ERROR(ValidateName(name, "prompt name"));
  if (prompt.rows < 1 || prompt.dim < 1 ||
      static_cast<int64_t>(prompt.values.size()) != prompt.rows * prompt.dim) {
    return InvalidArgumentError("prompt matrix is empty or its values do not match [rows, dim]");
  }
  if (shared_ != nullptr) return CreateShared(tenant, name, std::move(prompt), quota);
  MutexLock lock(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  TenantPrompts mine;
  if (auto it = snap->tenants.find(tenant); it != snap->tenants.end()) mine = *it->second;
  const int64_t bytes = static_cast<int64_t>(prompt.values.size() * sizeof(float));
  if (quota.max_prompts >= 0 && mine.usage.prompts + 1 > quota.max_prompts) {
    return ResourceExhaustedError("tenant '" + tenant + "' already stores " + std::to_string(mine.usage.prompts) +
                                  " prompt versions, its quota is " + std::to_string(quota.max_prompts) +
                                  "; delete some first");
  }
  if (quota.max_bytes >= 0 && mine.usage.bytes + bytes > quota.max_bytes) {
    return ResourceExhaustedError("tenant '" + tenant + "' stores " + std::to_string(mine.usage.bytes) +
                                  " prompt bytes; this one adds " + std::to_string(bytes) +
                                  ", over its quota of " + std::to_string(quota.max_bytes) + " bytes");
  }
  int64_t high = deleted_high_water_.count(tenant) ? deleted_high_water_[tenant] : 0;
  if (auto n = mine.by_name.find(name); n != mine.by_name.end() && !n->second.empty()) {
    high = std::max(high, n->second.back()->key().version);
  }
  auto created = std::make_shared<const Prompt>(PromptKey{tenant, name, high + 1}, prompt.rows, prompt.dim,
                                                std::move(prompt.values), prompt.format, NowUnixMs(),
                                                std::move(prompt.note));
  if (store_ != nullptr) SOFTSERVE_RETURN_IF_ERROR(store_->Put(*created).WithPrefix("prompt store"));
  mine.by_name[name].push_back(created);
  ++mine.usage.prompts;
  mine.usage.bytes += bytes;
  Publish(*snap, tenant, std::move(mine));
  return PromptPtr(created);
}

StatusOr<PromptPtr> PromptRegistry::Get(const std::string& tenant, const std::string& name,
                                        int64_t version) const {
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(tenant);
  if (t != snap->tenants.end()) {
    auto n = t->second->by_name.find(name);
    if (n != t->second->by_name.end() && !n->second.empty()) {
      if (version == 0) return WithValues(n->second.back());
      for (const PromptPtr& p : n->second) {
        if (p->key().version == version) return WithValues(p);
      }
      return NotFoundError("prompt " + QuoteForMessage(name) + " has no version " + std::to_string(version));
    }
  }
  return NotFoundError("no prompt named " + QuoteForMessage(name));
}

StatusOr<PromptPtr> PromptRegistry::WithValues(const PromptPtr& description) const {
  if (description->has_values()) return description;
  if (PromptPtr cached = values_->Find(description->key())) return cached;
  auto fetched = shared_->Fetch(description->key());
  if (fetched.status().code() == StatusCode::kUnavailable) {
    return UnavailableError("prompt " + QuoteForMessage(description->key().name) + " version " +
                            std::to_string(description->key().version) +
                            " is not in this replica's memory and the shared prompt store is unreachable; retry later");
  }
  if (fetched.status().code() == StatusCode::kNotFound) {
    return NotFoundError("prompt " + QuoteForMessage(description->key().name) + " was deleted");
  }
  SOFTSERVE_RETURN_IF_ERROR(fetched.status());
  if ((*fetched)->checksum() != description->checksum()) {
    return InternalError("prompt store: prompt " + description->key().ToString() + " changed under its version");
  }
  values_->Put(*fetched);
  return *fetched;
}

std::vector<PromptPtr> PromptRegistry::Versions(const std::string& tenant, const std::string& name) const {
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(tenant);
  if (t == snap->tenants.end()) return {};
  auto n = t->second->by_name.find(name);
  return n == t->second->by_name.end() ? std::vector<PromptPtr>{} : n->second;
}

StatusOr<PromptListPage> PromptRegistry::List(const std::string& tenant, const std::string& prefix,
                                              int page_size, const std::string& page_token) const {
  if (page_size < 1 || page_size > 1000) return InvalidArgumentError("page_size must be in 1..1000");
  std::string after;
  if (!page_token.empty() && (!HexDecode(page_token, &after) || !ValidateName(after, "token").ok())) {
    return InvalidArgumentError("page_token is not one this server issued");
  }
  PromptListPage page;
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(tenant);
  if (t == snap->tenants.end()) return page;
  const auto& names = t->second->by_name;
  auto it = after.empty() ? names.lower_bound(prefix) : names.upper_bound(after);
  for (; it != names.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    if (static_cast<int>(page.prompts.size()) == page_size) {
      page.next_page_token = HexEncode(page.prompts.back()->key().name);
      break;
    }
    page.prompts.push_back(it->second.back());
  }
  return page;
}

Status PromptRegistry::Delete(const std::string& tenant, const std::string& name, int64_t version, int64_t* deleted) {
  if (deleted != nullptr) *deleted = 0;
  if (shared_ != nullptr) return DeleteShared(tenant, name, version, deleted);
  MutexLock lock(&write_mu_);
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(tenant);
  if (t == snap->tenants.end() || t->second->by_name.count(name) == 0) {
    return NotFoundError("no prompt named " + QuoteForMessage(name));
  }
  TenantPrompts mine = *t->second;
  std::vector<PromptPtr>& versions = mine.by_name[name];
  std::vector<PromptPtr> doomed;
  for (const PromptPtr& p : versions) {
    if (version == 0 || p->key().version == version) doomed.push_back(p);
  }
  if (doomed.empty()) return NotFoundError("prompt " + QuoteForMessage(name) + " has no version " + std::to_string(version));
  Status result;
  for (const PromptPtr& p : doomed) {
    const int64_t high = std::max(deleted_high_water_[tenant], p->key().version);
    if (store_ != nullptr) {
      result = store_->Delete(p->key(), high).WithPrefix("prompt store");
      if (!result.ok()) break;
    }
    deleted_high_water_[tenant] = high;
    versions.erase(std::find(versions.begin(), versions.end(), p));
    --mine.usage.prompts;
    mine.usage.bytes -= p->bytes();
    if (deleted != nullptr) ++*deleted;
  }
  if (versions.empty()) mine.by_name.erase(name);
  Publish(*snap, tenant, std::move(mine));
  return result;
}

TenantUsage PromptRegistry::Usage(const std::string& tenant) const {
  std::shared_ptr<const Snapshot> snap = Current();
  auto t = snap->tenants.find(tenant);
  return t == snap->tenants.end() ? TenantUsage{} : t->second->usage;
}

int64_t PromptRegistry::total_prompts() const { return Current()->prompts; }
int64_t PromptRegistry::total_bytes() const { return Current()->bytes; }

}  // namespace softserve::core
