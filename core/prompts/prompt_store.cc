#include "core/prompts/prompt_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <thread>

#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/model/safetensors.h"
#include "core/prompts/prompt_names.h"

namespace softserve::core {
namespace {

constexpr char kRecordKind[] = "softserve.prompt/1";
constexpr char kHighWaterFile[] = "deleted-high-water";
constexpr char kLegacyTombstone[] = "deleted";

// The high-water mark as a fixed-width record, rewritten in place: a delete then needs no new
// disk space, so deletes work on a full disk.
std::string HighWaterRecord(int64_t high) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld\n", static_cast<long long>(high));
  return buf;
}

int64_t ReadNumber(const std::string& path) {
  auto text = ReadFileToString(path, 64);
  return text.ok() ? std::max<int64_t>(0, std::strtoll(text->c_str(), nullptr, 10)) : 0;
}

std::string RecordChecksum(const std::string& tenant, const std::string& name, int64_t version,
                           const std::string& format, int64_t created, const std::string& note,
                           const void* data, size_t size) {
  Sha256 h;
  for (const std::string& field : {tenant, name, std::to_string(version), format,
                                   std::to_string(created), note}) {
    h.Update(field);
    h.Update("\0", 1);
  }
  h.Update(data, size);
  auto d = h.Finish();
  return ToHex(d.data(), d.size());
}

bool ParseVersionFile(const std::string& file, int64_t* version) {
  // v<digits>.prompt
  if (file.size() < 9 || file[0] != 'v' || file.substr(file.size() - 7) != ".prompt") return false;
  const std::string digits = file.substr(1, file.size() - 8);
  if (digits.empty() || digits.size() > 15) return false;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *version = v;
  return v > 0;
}

std::string VersionFile(int64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "v%09lld.prompt", static_cast<long long>(version));
  return buf;
}

Status MakeDirectoryDurably(const std::string& dir, const std::string& parent) {
  const bool existed = IsDirectory(dir);
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectories(dir));
  return existed ? OkStatus() : SyncDirectory(parent);
}

}  // namespace

std::string SerializePromptRecord(const Prompt& p) {
  const std::string format = PromptFormatName(p.format());
  TensorToWrite t;
  t.name = "prompt";
  t.dtype = SafetensorsDtype::kF32;
  t.shape = {p.rows(), p.dim()};
  t.bytes.assign(reinterpret_cast<const char*>(p.values().data()), p.values().size() * sizeof(float));
  std::map<std::string, std::string> meta = {
      {"kind", kRecordKind},
      {"tenant", p.key().tenant},
      {"name", p.key().name},
      {"version", std::to_string(p.key().version)},
      {"format", format},
      {"created_unix_ms", std::to_string(p.created_unix_ms())},
      {"note", p.source_note()},
      {"sha256", RecordChecksum(p.key().tenant, p.key().name, p.key().version, format,
                                p.created_unix_ms(), p.source_note(), t.bytes.data(), t.bytes.size())},
  };
  return SerializeSafetensors({t}, meta).value();
}

StatusOr<PromptPtr> ParsePromptRecord(std::string_view bytes, const std::string& what) {
  SOFTSERVE_ASSIGN_OR_RETURN(
      auto c, SafetensorsContents::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), what));
  const auto& m = c.metadata();
  auto field = [&](const char* key) -> const std::string* {
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  };
  for (const char* key : {"kind", "tenant", "name", "version", "format", "created_unix_ms", "note", "sha256"}) {
    if (field(key) == nullptr) return DataLossError(what + ": metadata field '" + key + "' missing");
  }
  if (*field("kind") != kRecordKind) return DataLossError(what + ": not a softserve prompt record");
  const TensorView* t = c.Find("prompt");
  if (t == nullptr || t->dtype != SafetensorsDtype::kF32 || t->shape.size() != 2 || t->shape[0] < 1 ||
      t->shape[1] < 1) {
    return DataLossError(what + ": tensor 'prompt' missing or not a 2-D F32 matrix");
  }
  char* end = nullptr;
  const int64_t version = std::strtoll(field("version")->c_str(), &end, 10);
  const int64_t created = std::strtoll(field("created_unix_ms")->c_str(), nullptr, 10);
  PromptFormat format = PromptFormat::kRaw;
  const bool format_ok = ParsePromptFormat(*field("format"), &format);
  if (version < 1 || *end != '\0' || !format_ok) return DataLossError(what + ": bad version or format");
  const std::string expected = RecordChecksum(*field("tenant"), *field("name"), version, *field("format"),
                                              created, *field("note"), t->data, t->nbytes);
  if (expected != *field("sha256")) return DataLossError(what + ": checksum mismatch (corrupt file)");
  std::vector<float> values(t->numel());
  std::memcpy(values.data(), t->data, t->nbytes);
  return std::make_shared<const Prompt>(PromptKey{*field("tenant"), *field("name"), version}, t->shape[0],
                                        t->shape[1], std::move(values), format, created, *field("note"));
}

StatusOr<std::unique_ptr<PromptStore>> PromptStore::Open(const std::string& root) {
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectories(root));
  return std::unique_ptr<PromptStore>(new PromptStore(root));
}

std::string PromptStore::TenantDir(const std::string& tenant) const {
  return JoinPath(root_, "t-" + HexEncode(tenant));
}

std::string PromptStore::NameDir(const std::string& tenant, const std::string& name) const {
  return JoinPath(TenantDir(tenant), "p-" + HexEncode(name));
}

std::string PromptStore::PathOf(const PromptKey& key) const {
  return JoinPath(NameDir(key.tenant, key.name), VersionFile(key.version));
}

Status PromptStore::Put(const Prompt& prompt) {
  const std::string tenant_dir = TenantDir(prompt.key().tenant);
  const std::string dir = NameDir(prompt.key().tenant, prompt.key().name);
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectoryDurably(tenant_dir, root_));
  const std::string high_water = JoinPath(tenant_dir, kHighWaterFile);
  if (!PathExists(high_water)) SOFTSERVE_RETURN_IF_ERROR(WriteFileDurably(high_water, HighWaterRecord(0)));
  SOFTSERVE_RETURN_IF_ERROR(MakeDirectoryDurably(dir, tenant_dir));
  return WriteFileDurably(PathOf(prompt.key()), SerializePromptRecord(prompt));
}

Status PromptStore::Delete(const PromptKey& key, int64_t deleted_high_water) {
  const std::string path = PathOf(key);
  if (!PathExists(path)) return NotFoundError("prompt " + key.ToString() + " is not stored");
  // The high-water mark first: a crash between the two steps must not let a later upload reuse
  // the version number.
  const std::string tenant_dir = TenantDir(key.tenant);
  const std::string high_water = JoinPath(tenant_dir, kHighWaterFile);
  if (PathExists(high_water)) {
    SOFTSERVE_RETURN_IF_ERROR(OverwriteInPlace(high_water, HighWaterRecord(deleted_high_water)));
  } else {
    SOFTSERVE_RETURN_IF_ERROR(WriteFileDurably(high_water, HighWaterRecord(deleted_high_water)));
  }
  SOFTSERVE_RETURN_IF_ERROR(RemoveFileDurably(path));
  const std::string dir = NameDir(key.tenant, key.name);
  auto left = ListDirectory(dir);
  if (left.ok() && left->empty() && ::rmdir(dir.c_str()) == 0) (void)SyncDirectory(tenant_dir);
  return OkStatus();
}

void PromptStore::CompactTombstones(const std::vector<std::string>& tombstones, StoreLoadReport* report) {
  if (tombstones.empty()) return;
  std::set<std::string> tenant_dirs;
  for (const auto& [tenant, high] : report->deleted_high_water) {
    if (!WriteFileDurably(JoinPath(TenantDir(tenant), kHighWaterFile), HighWaterRecord(high)).ok()) return;
  }
  for (const std::string& path : tombstones) {
    if (!RemoveFileDurably(path).ok()) continue;
    const std::string dir = path.substr(0, path.rfind('/'));
    auto left = ListDirectory(dir);
    if (left.ok() && left->empty() && ::rmdir(dir.c_str()) == 0) tenant_dirs.insert(dir.substr(0, dir.rfind('/')));
  }
  for (const std::string& dir : tenant_dirs) (void)SyncDirectory(dir);
}

void PromptStore::LoadNameDir(const std::string& dir, const std::string& tenant, const std::string& name,
                              StoreLoadReport* report, std::vector<std::string>* legacy_tombstones) {
  auto files = ListDirectory(dir);
  if (!files.ok()) {
    report->skipped.push_back({dir, files.status().message()});
    return;
  }
  for (const std::string& file : *files) {
    const std::string path = JoinPath(dir, file);
    int64_t version = 0;
    if (file.find(".tmp.") != std::string::npos) {
      // A write that crashed before its rename: never acknowledged, never served.
      report->skipped.push_back({path, "incomplete write (temp file), removed"});
      (void)RemoveFileDurably(path);
      continue;
    }
    if (file == kLegacyTombstone) {
      int64_t& high = report->deleted_high_water[tenant];
      high = std::max(high, ReadNumber(path));
      legacy_tombstones->push_back(path);
      continue;
    }
    if (!ParseVersionFile(file, &version)) {
      report->skipped.push_back({path, "unexpected file"});
      continue;
    }
    auto bytes = ReadFileToString(path);
    if (!bytes.ok()) {
      report->skipped.push_back({path, bytes.status().message()});
      continue;
    }
    auto prompt = ParsePromptRecord(*bytes, path);
    if (!prompt.ok()) {
      report->skipped.push_back({path, prompt.status().message()});
      continue;
    }
    const PromptKey& k = (*prompt)->key();
    if (k.tenant != tenant || k.name != name || k.version != version) {
      report->skipped.push_back({path, "identity in the file does not match its location"});
      continue;
    }
    report->prompts.push_back(std::move(prompt).value());
  }
}

StatusOr<StoreLoadReport> PromptStore::LoadAll() {
  StoreLoadReport report;
  struct NameDirWork {
    std::string dir, tenant, name;
  };
  std::vector<NameDirWork> work;
  SOFTSERVE_ASSIGN_OR_RETURN(auto tenants, ListDirectory(root_));
  for (const std::string& t : tenants) {
    if (t[0] == '.') continue;  // not ours to judge (the server's upload spool lives here)
    std::string tenant;
    const std::string tdir = JoinPath(root_, t);
    if (t.rfind("t-", 0) != 0 || !HexDecode(t.substr(2), &tenant) || !ValidateName(tenant, "tenant").ok() ||
        !IsDirectory(tdir)) {
      report.skipped.push_back({tdir, "not a tenant directory"});
      continue;
    }
    auto names = ListDirectory(tdir);
    if (!names.ok()) {
      report.skipped.push_back({tdir, names.status().message()});
      continue;
    }
    for (const std::string& n : *names) {
      std::string name;
      const std::string ndir = JoinPath(tdir, n);
      if (n == kHighWaterFile) {
        int64_t& high = report.deleted_high_water[tenant];
        high = std::max(high, ReadNumber(ndir));
        continue;
      }
      if (n.rfind(std::string(kHighWaterFile) + ".tmp.", 0) == 0) {
        report.skipped.push_back({ndir, "incomplete write (temp file), removed"});
        (void)RemoveFileDurably(ndir);
        continue;
      }
      if (n.rfind("p-", 0) != 0 || !HexDecode(n.substr(2), &name) || !ValidateName(name, "name").ok() ||
          !IsDirectory(ndir)) {
        report.skipped.push_back({ndir, "not a prompt directory"});
        continue;
      }
      work.push_back({ndir, tenant, name});
    }
  }
  // Reading and checksumming every byte dominates start-up with many prompts: name directories
  // are independent, so they load in parallel, each worker into its own report.
  const size_t workers = std::max<size_t>(1, std::min<size_t>({work.size(), 8, std::thread::hardware_concurrency()}));
  std::vector<StoreLoadReport> parts(workers);
  std::vector<std::vector<std::string>> tombstones(workers);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = w; i < work.size(); i += workers) {
        LoadNameDir(work[i].dir, work[i].tenant, work[i].name, &parts[w], &tombstones[w]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (StoreLoadReport& part : parts) {
    for (PromptPtr& p : part.prompts) report.prompts.push_back(std::move(p));
    for (auto& sk : part.skipped) report.skipped.push_back(std::move(sk));
    for (const auto& [tenant, high] : part.deleted_high_water) {
      int64_t& h = report.deleted_high_water[tenant];
      h = std::max(h, high);
    }
  }
  std::vector<std::string> legacy;
  for (auto& t : tombstones) legacy.insert(legacy.end(), t.begin(), t.end());
  CompactTombstones(legacy, &report);
  std::sort(report.skipped.begin(), report.skipped.end());
  return report;
}

}  // namespace softserve::core
