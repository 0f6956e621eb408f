#include "store/pg_connection.h"

#include <endian.h>
#include <libpq-fe.h>

#include <cstring>
#include <regex>

namespace softserve::store {

using core::Status;
using core::StatusOr;

std::string RedactConnectionUrl(const std::string& url) {
  // postgresql://user:secret@host/db  and  "... password=secret ..." (also inside a query string)
  static const std::regex kUserinfo(R"(^(postgres(?:ql)?://[^:/@?]*):[^@/?]*@)");
  static const std::regex kKeyword(R"((password\s*=\s*)('[^']*'|[^\s&]*))");
  std::string out = std::regex_replace(url, kUserinfo, "$1:***@");
  return std::regex_replace(out, kKeyword, "$1***");
}

PgResult::PgResult(pg_result* result) : result_(result) {}
PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}
PgResult::PgResult(PgResult&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

int PgResult::rows() const { return PQntuples(result_); }
bool PgResult::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }
std::string_view PgResult::Bytes(int row, int col) const {
  return std::string_view(PQgetvalue(result_, row, col), static_cast<size_t>(PQgetlength(result_, row, col)));
}
int64_t PgResult::Int64(int row, int col) const {
  uint64_t be = 0;
  std::memcpy(&be, PQgetvalue(result_, row, col), sizeof(be));
  return static_cast<int64_t>(be64toh(be));
}
int32_t PgResult::Int32(int row, int col) const {
  uint32_t be = 0;
  std::memcpy(&be, PQgetvalue(result_, row, col), sizeof(be));
  return static_cast<int32_t>(be32toh(be));
}

StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& url) {
  pg_conn* conn = PQconnectdb(url.c_str());
  const std::string redacted = RedactConnectionUrl(url);
  if (conn == nullptr) return core::UnavailableError("PostgreSQL unreachable at " + redacted + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return core::UnavailableError("PostgreSQL unreachable at " + redacted + ": " + msg);
  }
  // Server notices ("relation ... already exists, skipping" from the idempotent migrations) are
  // not errors and must not reach stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn, redacted));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

Status PgConnection::Reconnect() {
  PQreset(conn_);
  if (PQstatus(conn_) == CONNECTION_OK) return core::OkStatus();
  std::string msg = PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return core::UnavailableError("PostgreSQL unreachable at " + redacted_url_ + ": " + msg);
}

Status PgConnection::ErrorOf(pg_result* result, const std::string& what) const {
  std::string msg = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  if (PQstatus(conn_) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0) {
    return core::UnavailableError("PostgreSQL unreachable at " + redacted_url_ + " (" + what + "): " + msg);
  }
  if (sqlstate == "40001" || sqlstate == "40P01") return Status(core::StatusCode::kAborted, what + ": " + msg);
  if (sqlstate == "23505") return core::AlreadyExistsError(what + ": " + msg);
  return core::InternalError(what + ": " + msg + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"));
}

StatusOr<PgResult> PgConnection::Exec(const std::string& sql, const std::vector<PgParam>& params) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const PgParam& p : params) {
    values.push_back(p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  pg_result* raw = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                lengths.data(), formats.data(), /*resultFormat=*/1);
  PgResult result(raw);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return ErrorOf(raw, sql.substr(0, sql.find_first_of("(\n")));
  }
  return result;
}

Status PgConnection::ExecScript(const std::string& sql) {
  pg_result* raw = PQexec(conn_, sql.c_str());
  PgResult owned(raw);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return ErrorOf(raw, "script");
  return core::OkStatus();
}

Status PgConnection::Begin() { return Exec("BEGIN").status(); }
Status PgConnection::Commit() { return Exec("COMMIT").status(); }
void PgConnection::Rollback() { (void)Exec("ROLLBACK"); }

int PgConnection::socket() const { return PQsocket(conn_); }

StatusOr<std::vector<std::string>> PgConnection::TakeNotifications(const std::string& channel) {
  if (PQconsumeInput(conn_) == 0) return ErrorOf(nullptr, "LISTEN " + channel);
  std::vector<std::string> payloads;
  while (PGnotify* n = PQnotifies(conn_)) {
    if (channel == n->relname) payloads.emplace_back(n->extra);
    PQfreemem(n);
  }
  return payloads;
}

}  // namespace softserve::store
