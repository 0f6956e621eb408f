#include "core/common/sha256.h"

#include <gtest/gtest.h>

namespace softserve::core {
namespace {

// FIPS 180-4 / NIST CAVP example digests, through the build's implementation (OpenSSL in the
// server build) and the portable fallback (what a libtorch-only build uses).
TEST(Sha256Test, NistVectors) {
  for (auto hex : {&Sha256Hex, &PortableSha256Hex}) {
    EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
#if SOFTSERVE_EXPECT_OPENSSL
  EXPECT_STREQ(Sha256::Implementation(), "openssl");
#endif
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  Sha256 h;
  for (size_t i = 0; i < data.size(); i += 13) h.Update(data.data() + i, std::min<size_t>(13, data.size() - i));
  auto d = h.Finish();
  EXPECT_EQ(ToHex(d.data(), d.size()), Sha256Hex(data));
}

}  // namespace
}  // namespace softserve::core
