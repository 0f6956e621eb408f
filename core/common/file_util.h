// Files on disk: read-only memory maps, whole-file reads and crash-safe writes.
//
// WriteFileDurably is the only way softserve replaces a file whose loss would lose data: it
// writes a temp file in the same directory, fsyncs it, renames it over the target and fsyncs
// the directory, so after a crash at any point the target holds either the old or the new
// bytes, never a mix. Thread-safe (no shared state).
#ifndef SOFTSERVE_CORE_COMMON_FILE_UTIL_H_
#define SOFTSERVE_CORE_COMMON_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/status.h"

namespace softserve::core {

// A read-only private memory map of a whole file. Empty files map to size() == 0.
class MappedFile {
 public:
  // Returns NotFound if the file does not exist, InvalidArgument if it is not a regular
  // file, Internal for other OS errors; messages name the path.
  static StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

// Returns the file's bytes; NotFound / InvalidArgument (too large, not a file) / Internal.
StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 1u << 30);

// Atomically replaces `path` with `contents` (temp file + fsync + rename + directory fsync).
// Returns Internal naming the step and path on any OS error; the old file is then untouched.
Status WriteFileDurably(const std::string& path, std::string_view contents);

// Overwrites the first bytes of an existing file in place with `contents` and fsyncs it. Needs
// no new disk space (for a fixed-size record within one block: a full disk cannot stop it),
// but is atomic only for writes of one sector or less. NotFound if the file does not exist.
Status OverwriteInPlace(const std::string& path, std::string_view contents);

// fsyncs a directory so that renames/unlinks inside it survive a crash.
Status SyncDirectory(const std::string& dir);

// Removes a file and fsyncs its directory. NotFound if it does not exist.
Status RemoveFileDurably(const std::string& path);

// mkdir -p. OK if it already exists as a directory.
Status MakeDirectories(const std::string& path);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Names (not paths) of entries in `dir`, sorted; "." and ".." excluded.
StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir);
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_COMMON_FILE_UTIL_H_
