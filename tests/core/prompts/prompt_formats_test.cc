// Prompt formats: the residual fold must equal the reference's residual.prompt_folded (computed
// by the reference's own torch code); PEFT adapters must yield exactly their first
// num_virtual_tokens rows; every hostile or wrong file is a precise InvalidArgument.
#include "core/prompts/prompt_formats.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "core/common/file_util.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::softserve::testing::AllCloseRef;
using ::softserve::testing::ReferenceCases;
using ::softserve::testing::ReferenceModelDir;

at::Tensor ToTensor(const PromptMatrix& m) {
  return at::from_blob(const_cast<float*>(m.values.data()), {m.rows, m.dim}, at::kFloat).clone();
}

PromptLimits Limits() {
  PromptLimits l;
  l.d_model = 64;
  l.max_rows = 100;
  return l;
}

class PromptFormatsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PromptFormatsTest, ResidualFoldMatchesReference) {
  ReferenceCases cases(GetParam());
  auto bytes = ReadFileToString(ReferenceModelDir(GetParam()) + "/residual_prompt.safetensors");
  ASSERT_TRUE(bytes.ok());
  auto m = ParseResidualPrompt(*bytes, Limits());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, PromptFormat::kResidual);
  EXPECT_TRUE(AllCloseRef(ToTensor(*m), cases.Float("residual.prompt_folded")));
  // LoadPromptFromPath recognizes the residual layout by its MLP tensors.
  auto loaded = LoadPromptFromPath(ReferenceModelDir(GetParam()) + "/residual_prompt.safetensors", Limits());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->format, PromptFormat::kResidual);
}

TEST_P(PromptFormatsTest, PeftAdapterUsesOnlyTheFirstNumVirtualTokensRows) {
  ReferenceCases cases(GetParam());
  at::Tensor a = cases.Float("prompt.a");
  auto m = ParsePeftPrompt(testing::PeftAdapterConfig(a.size(0), 64), testing::PeftAdapterWeights(a), Limits());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, a.size(0));  // 2N stored, N served
  EXPECT_TRUE(at::equal(ToTensor(*m), a));
  EXPECT_NE(m->note.find("first 5 used"), std::string::npos) << m->note;
  // num_transformer_submodules null means 2 for SEQ_2_SEQ_LM.
  auto null_sub = ParsePeftPrompt(testing::PeftAdapterConfig(a.size(0), 64, "PROMPT_TUNING", "null"),
                                  testing::PeftAdapterWeights(a), Limits());
  ASSERT_TRUE(null_sub.ok()) << null_sub.status().ToString();
  EXPECT_TRUE(at::equal(ToTensor(*null_sub), a));
  // P_TUNING checkpoints are already passed through their encoder: served the same way.
  auto ptuning = ParsePeftPrompt(testing::PeftAdapterConfig(a.size(0), 64, "P_TUNING", "1"),
                                 testing::PeftAdapterWeights(a, 1), Limits());
  ASSERT_TRUE(ptuning.ok());
  EXPECT_TRUE(at::equal(ToTensor(*ptuning), a));
}

TEST_P(PromptFormatsTest, RawPromptRoundTrips) {
  ReferenceCases cases(GetParam());
  at::Tensor b = cases.Float("prompt.b");
  auto m = ParseRawPrompt(testing::RawPromptFile(b, "anything"), Limits());
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(at::equal(ToTensor(*m), b));
}

INSTANTIATE_TEST_SUITE_P(References, PromptFormatsTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

void ExpectInvalid(const StatusOr<PromptMatrix>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "accepted; expected an error mentioning " << needle;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(PromptFormatsValidationTest, RejectsWrongShapesAndValues) {
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(at::ones({4, 32})), Limits()), "d_model is 64");
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(at::ones({101, 64})), Limits()), "101 rows");
  at::Tensor nan = at::ones({3, 64});
  nan[1][5] = std::nanf("");
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(nan), Limits()), "row 1, column 5");
  at::Tensor inf = at::ones({3, 64});
  inf[2][0] = INFINITY;
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(inf), Limits()), "not finite");
  // Finite in float32 but Inf once served in float16.
  PromptLimits half = Limits();
  half.serving_dtype = DType::kFloat16;
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(at::full({2, 64}, 1e6)), half), "overflows");
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(at::ones({2, 64})).substr(0, 40), Limits()), "raw prompt");
  auto two = SerializeSafetensors({{"a", SafetensorsDtype::kF32, {1, 64}, std::string(256, '\0')},
                                   {"b", SafetensorsDtype::kF32, {1, 64}, std::string(256, '\0')}}, {});
  ExpectInvalid(ParseRawPrompt(*two, Limits()), "exactly one tensor");
  auto ids = SerializeSafetensors({{"a", SafetensorsDtype::kI64, {1, 64}, std::string(512, '\0')}}, {});
  ExpectInvalid(ParseRawPrompt(*ids, Limits()), "floating");
  auto one_d = SerializeSafetensors({{"a", SafetensorsDtype::kF32, {64}, std::string(256, '\0')}}, {});
  ExpectInvalid(ParseRawPrompt(*one_d, Limits()), "2-D");
  // Finite but absurd: beyond the documented magnitude.
  at::Tensor huge = at::ones({2, 64});
  huge[1][3] = -3e4;
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(huge), Limits()), "max_prompt_abs_value");
  // A valid prompt followed by junk: the bytes after the last tensor are refused.
  ExpectInvalid(ParseRawPrompt(testing::RawPromptFile(at::ones({2, 64})) + std::string(1000, 'j'), Limits()),
                "follow the last tensor");
  // Over the size limit: ResourceExhausted, as the server's streaming check answers.
  PromptLimits small = Limits();
  small.max_file_bytes = 100;
  auto big = ParseRawPrompt(testing::RawPromptFile(at::ones({2, 64})), small);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("max_upload_bytes"), std::string::npos);
}

TEST(PromptFormatsValidationTest, RejectsBadPeftAdapters) {
  at::Tensor p = at::ones({4, 64});
  ExpectInvalid(ParsePeftPrompt(testing::PeftAdapterConfig(4, 64, "LORA"), testing::PeftAdapterWeights(p), Limits()),
                "LORA");
  ExpectInvalid(ParsePeftPrompt(testing::PeftAdapterConfig(4, 512), testing::PeftAdapterWeights(p), Limits()),
                "token_dim is 512");
  ExpectInvalid(ParsePeftPrompt(testing::PeftAdapterConfig(5, 64), testing::PeftAdapterWeights(p), Limits()),
                "prompt_embeddings");
  ExpectInvalid(ParsePeftPrompt("{not json", testing::PeftAdapterWeights(p), Limits()), "adapter_config.json");
  ExpectInvalid(ParsePeftPrompt(R"({"peft_type": "PROMPT_TUNING"})", testing::PeftAdapterWeights(p), Limits()),
                "num_virtual_tokens");
  ExpectInvalid(ParsePeftPrompt(testing::PeftAdapterConfig(4, 64), testing::RawPromptFile(p, "other"), Limits()),
                "prompt_embeddings");
  // Only seq2seq prompts fit T5: a decoder-only (or unspecified) task type is refused.
  std::string causal = testing::PeftAdapterConfig(4, 64);
  causal.replace(causal.find("SEQ_2_SEQ_LM"), 12, "CAUSAL_LM");
  ExpectInvalid(ParsePeftPrompt(causal, testing::PeftAdapterWeights(p), Limits()), "CAUSAL_LM");
  std::string none = testing::PeftAdapterConfig(4, 64);
  none.replace(none.find("\"SEQ_2_SEQ_LM\""), 14, "null");
  ExpectInvalid(ParsePeftPrompt(none, testing::PeftAdapterWeights(p), Limits()), "task_type is 'none'");
}

TEST(PromptFormatsValidationTest, RejectsBadResidualCheckpoints) {
  auto bytes = ReadFileToString(ReferenceModelDir("t5-tiny-v1_0") + "/residual_prompt.safetensors");
  ASSERT_TRUE(bytes.ok());
  auto contents = SafetensorsContents::Parse(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), "r");
  ASSERT_TRUE(contents.ok());
  auto rebuild = [&](const std::string& skip, const std::string& reshape) {
    std::vector<TensorToWrite> out;
    for (const TensorView& v : contents->tensors()) {
      if (v.name == skip) continue;
      TensorToWrite t{v.name, v.dtype, v.shape, std::string(reinterpret_cast<const char*>(v.data), v.nbytes)};
      if (v.name == reshape) t.shape = {t.shape[0] / 2, t.shape[1] * 2};
      out.push_back(std::move(t));
    }
    return *SerializeSafetensors(out, {});
  };
  ExpectInvalid(ParseResidualPrompt(rebuild("mlp.up.bias", ""), Limits()), "mlp.up.bias");
  ExpectInvalid(ParseResidualPrompt(rebuild("", "mlp.up.weight"), Limits()), "mlp.up.weight");
  PromptLimits wide = Limits();
  wide.d_model = 128;
  ExpectInvalid(ParseResidualPrompt(*bytes, wide), "prompt");
}

TEST(PromptFormatsValidationTest, PathsPeftDirectoriesAndBinOnly) {
  char tmpl[] = "/tmp/softserve_prompt_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  at::Tensor p = at::randn({3, 64});
  ASSERT_TRUE(WriteFileDurably(dir + "/adapter_config.json", testing::PeftAdapterConfig(3, 64)).ok());
  ASSERT_TRUE(WriteFileDurably(dir + "/adapter_model.safetensors", testing::PeftAdapterWeights(p)).ok());
  auto m = LoadPromptFromPath(dir, Limits());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, PromptFormat::kPeft);
  EXPECT_TRUE(at::equal(ToTensor(*m), p));
  ASSERT_TRUE(RemoveFileDurably(dir + "/adapter_model.safetensors").ok());
  ASSERT_TRUE(WriteFileDurably(dir + "/adapter_model.bin", "pickle").ok());
  ExpectInvalid(LoadPromptFromPath(dir, Limits()), "safe_serialization");
  EXPECT_EQ(LoadPromptFromPath(dir + "/nope", Limits()).status().code(), StatusCode::kNotFound);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace softserve::core
