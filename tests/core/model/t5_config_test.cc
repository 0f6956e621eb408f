#include "core/model/t5_config.h"

#include <gtest/gtest.h>

#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

TEST(T5ConfigTest, AbsentKeysTakeHuggingFaceDefaults) {
  // The reference v1_0 config.json omits tie_word_embeddings: HF's default is true.
  auto c = LoadT5Config(softserve::testing::ReferenceModelDir("t5-tiny-v1_0") + "/config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->activation, Activation::kRelu);
  EXPECT_FALSE(c->gated);
  auto minimal = ParseT5Config(R"({"d_model": 32, "num_layers": 3, "num_heads": 2, "d_kv": 8, "d_ff": 40, "vocab_size": 100})");
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->num_decoder_layers, 3);  // = num_layers when absent
  EXPECT_EQ(minimal->relative_attention_num_buckets, 32);
  EXPECT_EQ(minimal->relative_attention_max_distance, 128);
  EXPECT_DOUBLE_EQ(minimal->layer_norm_epsilon, 1e-6);
  EXPECT_EQ(minimal->pad_token_id, 0);
  EXPECT_EQ(minimal->eos_token_id, 1);
  EXPECT_EQ(minimal->decoder_start_token_id, 0);
  EXPECT_EQ(minimal->inner_dim(), 16);  // heads * d_kv != d_model is allowed
}

TEST(T5ConfigTest, GatedGeluUntiedAndNullDecoderLayers) {
  auto c = LoadT5Config(softserve::testing::ReferenceModelDir("t5-tiny-v1_1") + "/config.json");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->gated);
  EXPECT_EQ(c->activation, Activation::kGeluNew);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->num_decoder_layers, 3);
  EXPECT_EQ(c->num_layers, 2);
  auto n = ParseT5Config(R"({"num_layers": 4, "num_decoder_layers": null})");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->num_decoder_layers, 4);
  auto exact = ParseT5Config(R"({"feed_forward_proj": "gated-gelu_new"})");
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->activation, Activation::kGeluNew);
}

TEST(T5ConfigTest, SerializedConfigParsesBack) {
  auto c = LoadT5Config(softserve::testing::ReferenceModelDir("t5-tiny-v1_1") + "/config.json");
  ASSERT_TRUE(c.ok());
  auto again = ParseT5Config(T5ConfigToJson(*c));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->gated, c->gated);
  EXPECT_EQ(again->activation, c->activation);
  EXPECT_EQ(again->num_decoder_layers, c->num_decoder_layers);
  EXPECT_EQ(again->tie_word_embeddings, c->tie_word_embeddings);
}

TEST(T5ConfigTest, RejectsBadValuesNamingTheKey) {
  struct Bad { const char* json; const char* key; };
  for (const Bad& b : std::vector<Bad>{{R"({"d_model": "512"})", "d_model"},
                                       {R"({"num_heads": 0})", "num_heads"},
                                       {R"({"feed_forward_proj": "swish"})", "swish"},
                                       {R"({"model_type": "bert"})", "model_type"},
                                       {R"({"layer_norm_epsilon": -1})", "layer_norm_epsilon"},
                                       {R"({"tie_word_embeddings": "yes"})", "tie_word_embeddings"},
                                       {R"({"relative_attention_num_buckets": 30})", "multiple of 4"},
                                       {R"({"vocab_size": 10, "eos_token_id": 12})", "vocabulary"},
                                       {"[1]", "not a JSON object"}}) {
    auto c = ParseT5Config(b.json);
    ASSERT_FALSE(c.ok()) << b.json;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(b.key), std::string::npos) << c.status().message();
  }
  EXPECT_EQ(LoadT5Config("/nonexistent/config.json").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace softserve::core
