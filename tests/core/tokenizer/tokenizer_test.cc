// Tokenizer against the real t5-small spiece.model. Expected ids come from
// tests/data/t5-small/README.md (HF's published encoding) and from HF's tokenizer.json
// vocabulary (piece -> id), never from this tokenizer.
#include "core/tokenizer/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Tokenizer::Load(softserve::testing::TestDataDir() + "/t5-small/spiece.model");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = std::move(t).value();
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TokenizerTest, KnownEncodingFromReadmeWithEos) {
  auto ids = tok_->Encode("translate English to German: The house is wonderful.");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5, 1));
  auto no_eos = tok_->Encode("translate English to German: The house is wonderful.", false);
  ASSERT_TRUE(no_eos.ok());
  EXPECT_EQ(no_eos->size(), 10u);
}

TEST_F(TokenizerTest, SentinelsCountDownFromTheTop) {
  EXPECT_EQ(tok_->vocab_size(), 32100);
  EXPECT_EQ(tok_->SentinelId(0), 32099);
  EXPECT_EQ(tok_->SentinelId(99), 32000);
  EXPECT_EQ(tok_->IdToPiece(32099), "<extra_id_0>");
  EXPECT_EQ(tok_->IdToPiece(32000), "<extra_id_99>");
}

// HF's span-corruption example; piece ids from tokenizer.json (▁The 37, ▁walks 10681, ▁in 16,
// ▁park 2447, ▁cute 5295, ▁dog 1782, ▁the 8).
TEST_F(TokenizerTest, SentinelsInTextAreSplitOut) {
  auto in = tok_->Encode("The <extra_id_0> walks in <extra_id_1> park");
  ASSERT_TRUE(in.ok());
  EXPECT_THAT(*in, ElementsAre(37, 32099, 10681, 16, 32098, 2447, 1));
  auto labels = tok_->Encode("<extra_id_0> cute dog <extra_id_1> the <extra_id_2>");
  ASSERT_TRUE(labels.ok());
  EXPECT_THAT(*labels, ElementsAre(32099, 5295, 1782, 32098, 8, 32097, 1));
  // Not sentinels: out of range, non-canonical, unterminated.
  auto plain = tok_->Encode("<extra_id_100> <extra_id_01> <extra_id_3", false);
  ASSERT_TRUE(plain.ok());
  for (int64_t id : *plain) EXPECT_LT(id, 32000);
}

TEST_F(TokenizerTest, LiteralSpecialTokensMapToTheirIds) {
  auto ids = tok_->Encode("The</s>dog<pad>", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(37, 1, 1782, 0));
}

TEST_F(TokenizerTest, DecodeSkipsPadAndEosAndKeepsSentinels) {
  // The pretrained model's greedy output for the README's input (README fact).
  auto text = tok_->Decode({0, 644, 4598, 229, 19250, 5, 1});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "Das Haus ist wunderbar.");
  auto span = tok_->Decode({32099, 5295, 1782, 32098, 8, 32097, 1});
  ASSERT_TRUE(span.ok());
  EXPECT_EQ(*span, "<extra_id_0> cute dog<extra_id_1> the<extra_id_2>");
  auto skipped = tok_->Decode({32099, 5295, 1782, 32098, 8, 32097, 1}, /*skip_sentinels=*/true);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "cute dog the");
}

TEST_F(TokenizerTest, RoundTrips) {
  for (const std::string text : {"The quick brown fox jumps over the lazy dog.",
                                 "translate English to German: The house is wonderful.",
                                 "Grüße aus München, 3.5 km entfernt!", "a", "Hello  world"}) {
    auto ids = tok_->Encode(text);
    ASSERT_TRUE(ids.ok()) << text;
    EXPECT_EQ(ids->back(), 1);
    auto back = tok_->Decode(*ids);
    ASSERT_TRUE(back.ok());
    // SentencePiece normalizes runs of spaces; everything else survives.
    std::string expected = text == "Hello  world" ? "Hello world" : text;
    EXPECT_EQ(*back, expected);
  }
}

TEST_F(TokenizerTest, UnicodeOutsideVocabularyBecomesUnk) {
  auto ids = tok_->Encode("東京", false);
  ASSERT_TRUE(ids.ok());
  ASSERT_FALSE(ids->empty());
  EXPECT_THAT(*ids, ::testing::Contains(2));
  // "Gr" + "üß" + "e" (tokenizer.json: ▁Gr 3796, üß 11984, e 15).
  auto g = tok_->Encode("Grüße", false);
  ASSERT_TRUE(g.ok());
  EXPECT_THAT(*g, ElementsAre(3796, 11984, 15));
}

TEST_F(TokenizerTest, EmptyTextGivesOnlyEos) {
  auto ids = tok_->Encode("");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(1));
  auto none = tok_->Encode("   ", false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto text = tok_->Decode({});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "");
}

TEST_F(TokenizerTest, RejectsInvalidUtf8AndNegativeIds) {
  EXPECT_EQ(tok_->Encode("bad \xC3\x28 byte").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tok_->Encode("overlong \xC0\xAF").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tok_->Decode({37, -5}).status().code(), StatusCode::kInvalidArgument);
  // Padded embedding rows past the tokenizer have no text but do not fail.
  auto padded = tok_->Decode({37, 32127});
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(*padded, "The");
}

TEST(TokenizerLoadTest, MissingOrBadModelFiles) {
  EXPECT_EQ(Tokenizer::Load("/nonexistent/spiece.model").status().code(), StatusCode::kNotFound);
  // A file that is not a SentencePiece model.
  auto s = Tokenizer::Load(softserve::testing::TestDataDir() + "/t5-small/config.json");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << s.status().ToString();
  TokenizerOptions bad_shim;
  bad_shim.shim_path = "/nonexistent/libsoftserve_spm.so";
  EXPECT_EQ(Tokenizer::Load(softserve::testing::TestDataDir() + "/t5-small/spiece.model", bad_shim)
                .status()
                .code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace softserve::core
