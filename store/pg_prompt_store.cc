#include "store/pg_prompt_store.h"

#include <algorithm>
#include <cstring>

#include "core/prompts/prompt_names.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "matrices are stored as float32 little-endian");

namespace softserve::store {

using core::PromptKey;
using core::PromptPtr;
using core::Status;
using core::StatusOr;

namespace {

// Taken for the whole migration transaction ("soft" in ASCII).
constexpr int64_t kMigrationLock = 0x736f6674;
// Taken by every write just before it allocates change ids, and held until it commits: change
// ids then become visible in increasing order, so a replica that has seen change N has seen
// every change below N (a bigserial alone can commit out of order).
constexpr int64_t kChangeLock = 0x63686e67;
const char kTakeChangeLock[] = "SELECT pg_advisory_xact_lock($1::int8)";

// Columns 0..8 describe a prompt; 9 is its matrix.
const char kDescribeColumns[] =
    "tenant, name, version, rows::int8, dim::int8, format, source_note, checksum, created_unix_ms";
const std::string kSelectColumns = std::string(kDescribeColumns) + ", matrix";

StatusOr<PromptPtr> DescriptionFromRow(const PgResult& r, int row) {
  core::PromptFormat format = core::PromptFormat::kRaw;
  const PromptKey key{std::string(r.Bytes(row, 0)), std::string(r.Bytes(row, 1)), r.Int64(row, 2)};
  if (!core::ParsePromptFormat(std::string(r.Bytes(row, 5)), &format) || r.Int64(row, 3) < 1 || r.Int64(row, 4) < 1) {
    return core::DataLossError("record " + key.ToString() + " is inconsistent (shape or format)");
  }
  return core::Prompt::Description(key, r.Int64(row, 3), r.Int64(row, 4), format, r.Int64(row, 8),
                                   std::string(r.Bytes(row, 6)), std::string(r.Bytes(row, 7)));
}

StatusOr<PromptPtr> PromptFromRow(const PgResult& r, int row) {
  SOFTSERVE_ASSIGN_OR_RETURN(PromptPtr d, DescriptionFromRow(r, row));
  const std::string_view matrix = r.Bytes(row, 9);
  if (static_cast<int64_t>(matrix.size()) != d->bytes()) {
    return core::DataLossError("prompt store: record " + d->key().ToString() + " is inconsistent (size)");
  }
  std::vector<float> values(static_cast<size_t>(d->rows() * d->dim()));
  std::memcpy(values.data(), matrix.data(), matrix.size());
  auto prompt = std::make_shared<const core::Prompt>(d->key(), d->rows(), d->dim(), std::move(values), d->format(),
                                                     d->created_unix_ms(), d->source_note());
  if (prompt->checksum() != d->checksum()) {
    return core::DataLossError("prompt store: record " + d->key().ToString() + " fails its checksum");
  }
  return PromptPtr(prompt);
}

Status QuotaError(const std::string& tenant, const char* what, int64_t have, int64_t add, int64_t max) {
  return core::ResourceExhaustedError("tenant '" + tenant + "' would exceed its " + what + " quota: it stores " +
                                      std::to_string(have) + ", this adds " + std::to_string(add) +
                                      ", the quota is " + std::to_string(max) + "; delete some first");
}

}  // namespace

const std::vector<std::string>& PgPromptStoreMigrations() {
  static const std::vector<std::string> kMigrations = {
      // 1: tenants, prompts, the change feed.
      R"(CREATE TABLE softserve_tenants (
           tenant text PRIMARY KEY,
           deleted_high_water bigint NOT NULL DEFAULT 0);
         CREATE TABLE softserve_prompts (
           tenant text NOT NULL REFERENCES softserve_tenants (tenant),
           name text NOT NULL,
           version bigint NOT NULL CHECK (version > 0),
           rows integer NOT NULL CHECK (rows > 0),
           dim integer NOT NULL CHECK (dim > 0),
           dtype text NOT NULL DEFAULT 'float32',
           format text NOT NULL,
           source_note text NOT NULL DEFAULT '',
           checksum text NOT NULL,
           created_unix_ms bigint NOT NULL,
           bytes bigint NOT NULL,
           matrix bytea NOT NULL,
           change_id bigint NOT NULL,
           PRIMARY KEY (tenant, name, version));
         CREATE TABLE softserve_changes (
           change_id bigserial PRIMARY KEY,
           tenant text NOT NULL,
           name text NOT NULL,
           version bigint NOT NULL,
           deleted boolean NOT NULL,
           at timestamptz NOT NULL DEFAULT now());)",
  };
  return kMigrations;
}

StatusOr<std::unique_ptr<PgPromptStore>> PgPromptStore::Open(const std::string& url) {
  SOFTSERVE_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(url));
  std::unique_ptr<PgPromptStore> store(new PgPromptStore(std::move(conn)));
  SOFTSERVE_RETURN_IF_ERROR(store->Migrate());
  return store;
}

template <typename Fn>
Status PgPromptStore::InTransaction(Fn&& body) {
  if (!conn_->healthy()) SOFTSERVE_RETURN_IF_ERROR(conn_->Reconnect());
  Status begun = conn_->Begin();
  if (!begun.ok() && begun.code() == core::StatusCode::kUnavailable) {
    SOFTSERVE_RETURN_IF_ERROR(conn_->Reconnect());  // the server restarted since the last call
    begun = conn_->Begin();
  }
  SOFTSERVE_RETURN_IF_ERROR(begun);
  Status s = body();
  if (s.ok()) s = conn_->Commit();
  if (!s.ok()) conn_->Rollback();
  return s;
}

Status PgPromptStore::Migrate() {
  std::lock_guard<std::mutex> l(mu_);
  return InTransaction([&]() -> Status {
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("SELECT pg_advisory_xact_lock($1::int8)", {PgParam::Int(kMigrationLock)}).status());
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec(
        "CREATE TABLE IF NOT EXISTS softserve_schema (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())").status());
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult applied, conn_->Exec("SELECT coalesce(max(version), 0)::int8 FROM softserve_schema"));
    const auto& migrations = PgPromptStoreMigrations();
    for (int64_t v = applied.Int64(0, 0) + 1; v <= static_cast<int64_t>(migrations.size()); ++v) {
      SOFTSERVE_RETURN_IF_ERROR(conn_->ExecScript(migrations[static_cast<size_t>(v - 1)]));
      SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("INSERT INTO softserve_schema (version) VALUES ($1)", {PgParam::Int(v)}).status());
    }
    return core::OkStatus();
  });
}

StatusOr<int64_t> PgPromptStore::SchemaVersion() {
  std::lock_guard<std::mutex> l(mu_);
  SOFTSERVE_ASSIGN_OR_RETURN(PgResult r, conn_->Exec("SELECT coalesce(max(version), 0)::int8 FROM softserve_schema"));
  return r.Int64(0, 0);
}

StatusOr<PromptPtr> PgPromptStore::Insert(const std::string& tenant, const std::string& name,
                                          const core::NewPrompt& prompt, const core::PromptQuota& quota) {
  SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(tenant, "tenant"));
  SOFTSERVE_RETURN_IF_ERROR(core::ValidateName(name, "prompt name"));
  if (prompt.rows < 1 || prompt.dim < 1 || static_cast<int64_t>(prompt.values.size()) != prompt.rows * prompt.dim) {
    return core::InvalidArgumentError("prompt matrix is inconsistent with its shape");
  }
  const int64_t bytes = prompt.rows * prompt.dim * 4;
  std::lock_guard<std::mutex> l(mu_);
  PromptPtr stored;
  Status quota_error;  // the client's to read: returned without the store prefix
  Status s = InTransaction([&]() -> Status {
    const std::vector<PgParam> t = {PgParam::Text(tenant)};
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("INSERT INTO softserve_tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING", t).status());
    // The tenant's row lock serializes its writes across replicas: versions and quotas below
    // are decided with no other write of this tenant in between.
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult hw, conn_->Exec("SELECT deleted_high_water FROM softserve_tenants WHERE tenant = $1 FOR UPDATE", t));
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult usage, conn_->Exec(
        "SELECT count(*)::int8, coalesce(sum(bytes), 0)::int8 FROM softserve_prompts WHERE tenant = $1", t));
    if (quota.max_prompts >= 0 && usage.Int64(0, 0) + 1 > quota.max_prompts) {
      quota_error = QuotaError(tenant, "prompt count", usage.Int64(0, 0), 1, quota.max_prompts);
      return quota_error;
    }
    if (quota.max_bytes >= 0 && usage.Int64(0, 1) + bytes > quota.max_bytes) {
      quota_error = QuotaError(tenant, "prompt bytes", usage.Int64(0, 1), bytes, quota.max_bytes);
      return quota_error;
    }
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult latest, conn_->Exec(
        "SELECT coalesce(max(version), 0)::int8 FROM softserve_prompts WHERE tenant = $1 AND name = $2",
        {PgParam::Text(tenant), PgParam::Text(name)}));
    const int64_t version = 1 + std::max(latest.Int64(0, 0), hw.Int64(0, 0));
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec(kTakeChangeLock, {PgParam::Int(kChangeLock)}).status());
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult change, conn_->Exec(
        "INSERT INTO softserve_changes (tenant, name, version, deleted) VALUES ($1, $2, $3, false) "
        "RETURNING change_id, (extract(epoch from clock_timestamp()) * 1000)::int8",
        {PgParam::Text(tenant), PgParam::Text(name), PgParam::Int(version)}));
    auto p = std::make_shared<const core::Prompt>(PromptKey{tenant, name, version}, prompt.rows, prompt.dim,
                                                  prompt.values, prompt.format, change.Int64(0, 1), prompt.note);
    std::string matrix(reinterpret_cast<const char*>(p->values().data()), static_cast<size_t>(bytes));
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec(
        "INSERT INTO softserve_prompts (tenant, name, version, rows, dim, format, source_note, checksum, "
        "created_unix_ms, bytes, matrix, change_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        {PgParam::Text(tenant), PgParam::Text(name), PgParam::Int(version), PgParam::Int(prompt.rows),
         PgParam::Int(prompt.dim), PgParam::Text(core::PromptFormatName(prompt.format)), PgParam::Text(prompt.note),
         PgParam::Text(p->checksum()), PgParam::Int(p->created_unix_ms()), PgParam::Int(bytes),
         PgParam::Bytes(std::move(matrix)), PgParam::Int(change.Int64(0, 0))}).status());
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("SELECT pg_notify($1, $2)",
                                          {PgParam::Text(kChannel), PgParam::Int(change.Int64(0, 0))}).status());
    stored = p;
    return core::OkStatus();
  });
  if (!quota_error.ok()) return quota_error;
  SOFTSERVE_RETURN_IF_ERROR(s.WithPrefix("prompt store"));
  return stored;
}

StatusOr<std::vector<int64_t>> PgPromptStore::Delete(const std::string& tenant, const std::string& name,
                                                     int64_t version) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<int64_t> removed;
  Status s = InTransaction([&]() -> Status {
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult hw, conn_->Exec(
        "SELECT deleted_high_water FROM softserve_tenants WHERE tenant = $1 FOR UPDATE", {PgParam::Text(tenant)}));
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult gone, conn_->Exec(
        "DELETE FROM softserve_prompts WHERE tenant = $1 AND name = $2 AND ($3::int8 = 0 OR version = $3::int8) "
        "RETURNING version",
        {PgParam::Text(tenant), PgParam::Text(name), PgParam::Int(version)}));
    if (hw.rows() == 0 || gone.rows() == 0) {
      return core::NotFoundError("prompt " + PromptKey{tenant, name, version}.ToString() + " not found");
    }
    int64_t high = 0;
    for (int i = 0; i < gone.rows(); ++i) {
      removed.push_back(gone.Int64(i, 0));
      high = std::max(high, gone.Int64(i, 0));
    }
    std::sort(removed.begin(), removed.end());
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec(kTakeChangeLock, {PgParam::Int(kChangeLock)}).status());
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec(
        "UPDATE softserve_tenants SET deleted_high_water = greatest(deleted_high_water, $2) WHERE tenant = $1",
        {PgParam::Text(tenant), PgParam::Int(high)}).status());
    for (int64_t v : removed) {
      SOFTSERVE_ASSIGN_OR_RETURN(PgResult change, conn_->Exec(
          "INSERT INTO softserve_changes (tenant, name, version, deleted) VALUES ($1, $2, $3, true) RETURNING change_id",
          {PgParam::Text(tenant), PgParam::Text(name), PgParam::Int(v)}));
      SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("SELECT pg_notify($1, $2)",
                                            {PgParam::Text(kChannel), PgParam::Int(change.Int64(0, 0))}).status());
    }
    return core::OkStatus();
  });
  if (s.code() == core::StatusCode::kNotFound) return s;
  SOFTSERVE_RETURN_IF_ERROR(s.WithPrefix("prompt store"));
  return removed;
}

StatusOr<PromptPtr> PgPromptStore::Get(const PromptKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  if (!conn_->healthy()) SOFTSERVE_RETURN_IF_ERROR(conn_->Reconnect().WithPrefix("prompt store"));
  auto r = conn_->Exec("SELECT " + kSelectColumns +
                           " FROM softserve_prompts WHERE tenant = $1 AND name = $2 AND ($3::int8 = 0 OR version = $3::int8) "
                           "ORDER BY version DESC LIMIT 1",
                       {PgParam::Text(key.tenant), PgParam::Text(key.name), PgParam::Int(key.version)});
  SOFTSERVE_RETURN_IF_ERROR(r.status().WithPrefix("prompt store"));
  if (r->rows() == 0) return core::NotFoundError("prompt " + key.ToString() + " not found");
  return PromptFromRow(*r, 0);
}

StatusOr<PgLoadReport> PgPromptStore::LoadAll() {
  std::lock_guard<std::mutex> l(mu_);
  PgLoadReport report;
  Status s = InTransaction([&]() -> Status {
    // One snapshot for the prompts and the change id they are consistent with.
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").status());
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult last, conn_->Exec("SELECT coalesce(max(change_id), 0)::int8 FROM softserve_changes"));
    report.last_change_id = last.Int64(0, 0);
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult hw, conn_->Exec(
        "SELECT tenant, deleted_high_water FROM softserve_tenants WHERE deleted_high_water > 0 ORDER BY tenant"));
    for (int i = 0; i < hw.rows(); ++i) report.deleted_high_water.emplace_back(std::string(hw.Bytes(i, 0)), hw.Int64(i, 1));
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult rows, conn_->Exec("SELECT " + kSelectColumns +
                                                          " FROM softserve_prompts ORDER BY tenant, name, version"));
    for (int i = 0; i < rows.rows(); ++i) {
      SOFTSERVE_ASSIGN_OR_RETURN(PromptPtr p, PromptFromRow(rows, i));
      report.prompts.push_back(std::move(p));
    }
    return core::OkStatus();
  });
  SOFTSERVE_RETURN_IF_ERROR(s.WithPrefix("prompt store"));
  return report;
}

StatusOr<core::SharedStoreLoad> PgPromptStore::LoadShared() {
  std::lock_guard<std::mutex> l(mu_);
  core::SharedStoreLoad load;
  Status s = InTransaction([&]() -> Status {
    SOFTSERVE_RETURN_IF_ERROR(conn_->Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").status());
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult last, conn_->Exec("SELECT coalesce(max(change_id), 0)::int8 FROM softserve_changes"));
    load.last_change_id = last.Int64(0, 0);
    SOFTSERVE_ASSIGN_OR_RETURN(PgResult r, conn_->Exec(std::string("SELECT ") + kDescribeColumns +
                                                       " FROM softserve_prompts ORDER BY tenant, name, version"));
    for (int i = 0; i < r.rows(); ++i) {
      SOFTSERVE_ASSIGN_OR_RETURN(PromptPtr description, DescriptionFromRow(r, i));
      load.prompts.push_back(std::move(description));
    }
    return core::OkStatus();
  });
  SOFTSERVE_RETURN_IF_ERROR(s.WithPrefix("prompt store"));
  return load;
}

StatusOr<PromptPtr> PgPromptStore::Describe(const PromptKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  if (!conn_->healthy()) SOFTSERVE_RETURN_IF_ERROR(conn_->Reconnect().WithPrefix("prompt store"));
  auto r = conn_->Exec(std::string("SELECT ") + kDescribeColumns +
                           " FROM softserve_prompts WHERE tenant = $1 AND name = $2 AND version = $3::int8",
                       {PgParam::Text(key.tenant), PgParam::Text(key.name), PgParam::Int(key.version)});
  SOFTSERVE_RETURN_IF_ERROR(r.status().WithPrefix("prompt store"));
  if (r->rows() == 0) return core::NotFoundError("prompt " + key.ToString() + " not found");
  return DescriptionFromRow(*r, 0);
}

StatusOr<PromptPtr> PgPromptStore::Fetch(const PromptKey& key) {
  if (key.version < 1) return core::InvalidArgumentError("Fetch needs a version");
  return Get(key);
}

StatusOr<std::vector<PromptChange>> PgPromptStore::ChangesSince(int64_t change_id, int limit) {
  std::lock_guard<std::mutex> l(mu_);
  if (!conn_->healthy()) SOFTSERVE_RETURN_IF_ERROR(conn_->Reconnect().WithPrefix("prompt store"));
  auto r = conn_->Exec(
      "SELECT change_id, tenant, name, version, deleted::int4 FROM softserve_changes WHERE change_id > $1 "
      "ORDER BY change_id LIMIT $2",
      {PgParam::Int(change_id), PgParam::Int(limit)});
  SOFTSERVE_RETURN_IF_ERROR(r.status().WithPrefix("prompt store"));
  std::vector<PromptChange> changes;
  for (int i = 0; i < r->rows(); ++i) {
    changes.push_back({r->Int64(i, 0), PromptKey{std::string(r->Bytes(i, 1)), std::string(r->Bytes(i, 2)), r->Int64(i, 3)},
                       r->Int32(i, 4) != 0});
  }
  return changes;
}

}  // namespace softserve::store
