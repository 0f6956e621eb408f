// The safetensors reader against well-formed files (our writer and the reference files written
// by Python's safetensors) and hostile ones: every malformed input is an error naming the
// problem, never a crash or an out-of-bounds read (the fuzzer explores further).
#include "core/model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

std::string WithHeader(const std::string& json, const std::string& body) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + body;
}

StatusOr<SafetensorsContents> Parse(const std::string& bytes) {
  return SafetensorsContents::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test");
}

TEST(SafetensorsTest, ReadsPythonWrittenReferenceFile) {
  auto f = SafetensorsFile::Open(softserve::testing::ReferenceModelDir("t5-tiny-v1_0") +
                                 "/residual_prompt.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const TensorView* p = (*f)->Find("prompt");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->dtype, SafetensorsDtype::kF32);
  EXPECT_EQ(p->shape, (std::vector<int64_t>{5, 64}));
  EXPECT_EQ(p->nbytes, 5u * 64 * 4);
  EXPECT_EQ((*f)->contents().tensors().size(), 7u);
}

TEST(SafetensorsTest, WriterRoundTripsWithMetadata) {
  std::vector<TensorToWrite> tensors(2);
  tensors[0] = {"a", SafetensorsDtype::kF32, {2, 2}, std::string(16, '\x01')};
  tensors[1] = {"b.ids", SafetensorsDtype::kI64, {3}, std::string(24, '\x02')};
  auto bytes = SerializeSafetensors(tensors, {{"format", "pt"}, {"note", "x"}});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ((bytes->size() - 8 - 40) % 8, 0u);  // header padded to 8 bytes
  auto c = Parse(*bytes);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->tensors().size(), 2u);
  EXPECT_EQ(c->metadata().at("note"), "x");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c->Find("b.ids")->data), 24), std::string(24, '\x02'));
  EXPECT_FALSE(SerializeSafetensors({{"a", SafetensorsDtype::kF32, {2}, "abc"}}, {}).ok());
}

TEST(SafetensorsTest, EmptyAndZeroSizedTensors) {
  auto c = Parse(WithHeader("{}", ""));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tensors().empty());
  auto z = Parse(WithHeader(R"({"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", ""));
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->Find("z")->numel(), 0);
}

struct HostileCase {
  const char* name;
  std::string bytes;
  StatusCode code;
};

TEST(SafetensorsTest, HostileInputsAreRejectedWithPreciseErrors) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::string huge_len(8, '\xff');
  std::vector<HostileCase> cases = {
      {"shorter than the length field", "abc", StatusCode::kDataLoss},
      {"header length past the end", WithHeader("{" + ok_entry + "}", "").substr(0, 20), StatusCode::kDataLoss},
      {"absurd header length", huge_len + "{}", StatusCode::kInvalidArgument},
      {"header not JSON", WithHeader("not json", ""), StatusCode::kInvalidArgument},
      {"header not an object", WithHeader("[1,2]", ""), StatusCode::kInvalidArgument},
      {"tensor data truncated", WithHeader("{" + ok_entry + "}", "1234"), StatusCode::kDataLoss},
      {"unknown dtype", WithHeader(R"({"t":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", "12"), StatusCode::kInvalidArgument},
      {"negative dim", WithHeader(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "12345678"), StatusCode::kInvalidArgument},
      {"fractional dim", WithHeader(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", "12345678"), StatusCode::kInvalidArgument},
      {"overflowing shape", WithHeader(R"({"t":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", "12345678"), StatusCode::kInvalidArgument},
      {"size mismatch", WithHeader(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"), StatusCode::kInvalidArgument},
      {"end before begin", WithHeader(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", "12345678"), StatusCode::kInvalidArgument},
      {"offsets past data", WithHeader(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", "12345678"), StatusCode::kDataLoss},
      {"overlap", WithHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"), StatusCode::kInvalidArgument},
      {"duplicate names", WithHeader("{" + ok_entry + "," + ok_entry + "}", "12345678"), StatusCode::kInvalidArgument},
      {"missing fields", WithHeader(R"({"t":{"dtype":"F32"}})", ""), StatusCode::kInvalidArgument},
      {"metadata not strings", WithHeader(R"({"__metadata__":{"a":1}})", ""), StatusCode::kInvalidArgument},
      {"deep nesting", WithHeader(std::string(2000, '[') + std::string(2000, ']'), ""), StatusCode::kInvalidArgument},
      // The reference implementation's rule: tensors tile the data section exactly.
      {"trailing bytes", WithHeader("{" + ok_entry + "}", "12345678" + std::string(4096, 'x')), StatusCode::kInvalidArgument},
      {"gap before a tensor", WithHeader(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", "123456789012"), StatusCode::kInvalidArgument},
      {"gap between tensors", WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", "123456789012"), StatusCode::kInvalidArgument},
      {"bytes but no tensors", WithHeader("{}", "x"), StatusCode::kInvalidArgument},
  };
  for (const HostileCase& c : cases) {
    auto r = Parse(c.bytes);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("test"), std::string::npos) << "message names the file";
  }
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent.safetensors").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace softserve::core
