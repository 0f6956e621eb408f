// SHA-256 (FIPS 180-4), used for prompt content checksums and API-key hashes.
// Uses OpenSSL's implementation where the build has it (SOFTSERVE_HAVE_OPENSSL: the server
// build, where it hashes every byte of the prompt store at start-up and every upload); a
// portable implementation remains for builds with libtorch alone. Both are tested against
// FIPS 180-4's vectors. Thread-safe (no shared state).
#ifndef SOFTSERVE_CORE_COMMON_SHA256_H_
#define SOFTSERVE_CORE_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace softserve::core {

// Incremental hasher: Update() any number of times, then Finish() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::array<uint8_t, 32> Finish();
  // "openssl" or "portable": the implementation this build uses.
  static const char* Implementation();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The portable implementation's digest, whichever the build uses (so tests check both).
std::string PortableSha256Hex(std::string_view data);

// Lower-case hex digest of `data`.
std::string Sha256Hex(std::string_view data);
std::string ToHex(const uint8_t* data, size_t size);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_COMMON_SHA256_H_
