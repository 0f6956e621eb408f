// PgConnection: one libpq connection to PostgreSQL, with parameterised queries, results read as
// plain values, and errors as Status.
//
// Errors: a connection that cannot be made or is lost is Unavailable ("PostgreSQL unreachable:
// ..."); a serialization failure or deadlock is Aborted (the transaction may be retried); a
// unique violation is AlreadyExists; any other SQL error is Internal. Messages never contain the
// password of the connection URL (RedactConnectionUrl).
// Results are requested in binary format: columns are read with the accessor of the type the SQL
// casts them to (int8 -> Int64, int4 -> Int32, text/bytea -> Bytes).
// Not thread-safe: one thread at a time (PgPromptStore serializes its use).
#ifndef SOFTSERVE_STORE_PG_CONNECTION_H_
#define SOFTSERVE_STORE_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/status.h"

struct pg_conn;
struct pg_result;

namespace softserve::store {

// The URL with any password replaced by "***" (URI user:password@ and password= forms).
std::string RedactConnectionUrl(const std::string& url);

// One query parameter: text (PostgreSQL parses it for the column's type) or binary bytes (bytea).
struct PgParam {
  std::string value;
  bool binary = false;
  static PgParam Text(std::string v) { return PgParam{std::move(v), false}; }
  static PgParam Int(int64_t v) { return PgParam{std::to_string(v), false}; }
  static PgParam Bytes(std::string v) { return PgParam{std::move(v), true}; }
};

class PgResult {
 public:
  explicit PgResult(pg_result* result);
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  bool IsNull(int row, int col) const;
  std::string_view Bytes(int row, int col) const;
  int64_t Int64(int row, int col) const;  // an int8 column
  int32_t Int32(int row, int col) const;  // an int4 column

 private:
  pg_result* result_;
};

class PgConnection {
 public:
  // Unavailable if the server cannot be reached or refuses the connection.
  static core::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement. Errors as in the header comment.
  core::StatusOr<PgResult> Exec(const std::string& sql, const std::vector<PgParam>& params = {});
  // Runs several statements with no parameters (simple query protocol), e.g. a migration.
  core::Status ExecScript(const std::string& sql);
  // BEGIN / COMMIT / ROLLBACK (ROLLBACK errors are ignored: the connection may be gone).
  core::Status Begin();
  core::Status Commit();
  void Rollback();

  // Whether the connection is usable; Reconnect() tries once to re-establish it.
  bool healthy() const;
  core::Status Reconnect();

  // LISTEN support: the socket to wait on, and the payloads of notifications received so far on
  // `channel` (consumes input first). Unavailable if the connection was lost.
  int socket() const;
  core::StatusOr<std::vector<std::string>> TakeNotifications(const std::string& channel);

  const std::string& redacted_url() const { return redacted_url_; }

 private:
  PgConnection(pg_conn* conn, std::string redacted_url) : conn_(conn), redacted_url_(std::move(redacted_url)) {}
  core::Status ErrorOf(pg_result* result, const std::string& what) const;

  pg_conn* conn_;
  std::string redacted_url_;
};

}  // namespace softserve::store

#endif  // SOFTSERVE_STORE_PG_CONNECTION_H_
