// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
// 8-byte little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
//
// The reader never trusts the file: every header field is type- and bounds-checked before any
// tensor byte is touched, so a truncated file or hostile header yields InvalidArgument/DataLoss
// naming the file and tensor, never a crash or an out-of-bounds read (fuzzed by
// tests/fuzz/safetensors_fuzz.cc). No libtorch here: views are raw bytes plus dtype and shape.
// Thread-safety: parsed results are immutable; concurrent const access is safe.
#ifndef SOFTSERVE_CORE_MODEL_SAFETENSORS_H_
#define SOFTSERVE_CORE_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/file_util.h"
#include "core/common/status.h"

namespace softserve::core {

enum class SafetensorsDtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F32" -> kF32 etc.; false for names we do not know.
bool ParseSafetensorsDtype(std::string_view name, SafetensorsDtype* out);
const char* SafetensorsDtypeName(SafetensorsDtype dtype);
size_t SafetensorsDtypeSize(SafetensorsDtype dtype);

// One tensor inside a parsed buffer. `data` points into the buffer the header was parsed from
// and is valid as long as that buffer is; it may be unaligned.
struct TensorView {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  // "[5, 64]"
  std::string ShapeString() const;
};

// Limits applied while parsing; defaults accept any real checkpoint.
struct SafetensorsLimits {
  size_t max_header_bytes = 100u << 20;  // the reference implementation's cap
  size_t max_tensors = 1u << 20;
  size_t max_rank = 8;
};

// The parsed contents of one safetensors buffer.
class SafetensorsContents {
 public:
  // Parses and validates `data[0, size)`. `what` names the source in error messages.
  // Returns InvalidArgument for a malformed header, unknown dtype, bad shape/offset, tensors
  // that overlap or leave a gap, bytes after the last tensor, or a size mismatch; DataLoss when
  // the buffer is shorter than its header promises.
  static StatusOr<SafetensorsContents> Parse(const uint8_t* data, size_t size,
                                             const std::string& what,
                                             const SafetensorsLimits& limits = {});

  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr if absent.
  const TensorView* Find(std::string_view name) const;
  // The string entries of "__metadata__" (empty if none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A memory-mapped safetensors file. Views stay valid while this object lives.
class SafetensorsFile {
 public:
  // Errors as MappedFile::Open and SafetensorsContents::Parse; messages name `path`.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path,
                                                         const SafetensorsLimits& limits = {});
  const SafetensorsContents& contents() const { return contents_; }
  const TensorView* Find(std::string_view name) const { return contents_.Find(name); }
  const std::string& path() const { return file_->path(); }

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsContents contents)
      : file_(std::move(file)), contents_(std::move(contents)) {}
  std::unique_ptr<MappedFile> file_;
  SafetensorsContents contents_;
};

// A tensor to serialize; `bytes` holds numel * dtype size little-endian bytes.
struct TensorToWrite {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Serializes tensors (in the given order, contiguous, header padded to 8 bytes) plus string
// metadata. Returns InvalidArgument if a tensor's byte count does not match its shape or a
// name repeats.
StatusOr<std::string> SerializeSafetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_MODEL_SAFETENSORS_H_
