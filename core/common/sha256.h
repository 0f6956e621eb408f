// SHA-256 (FIPS 180-4), used for prompt content checksums and API-key hashes.
// Self-contained so that core/ needs no crypto library. Thread-safe (pure functions).
#ifndef SOFTSERVE_CORE_COMMON_SHA256_H_
#define SOFTSERVE_CORE_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace softserve::core {

// Incremental hasher: Update() any number of times, then Finish() once.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::array<uint8_t, 32> Finish();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex digest of `data`.
std::string Sha256Hex(std::string_view data);
std::string ToHex(const uint8_t* data, size_t size);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_COMMON_SHA256_H_
