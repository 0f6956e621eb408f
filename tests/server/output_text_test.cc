// Output text as tokens arrive, with the real t5-small SentencePiece model: deltas that add up
// to the decoded output, and stop sequences that end it without ever showing their text.
#include "server/output_text.h"

#include <gtest/gtest.h>

#include "tests/testing/reference_data.h"

namespace softserve::server {
namespace {

class StopSequenceTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = core::Tokenizer::Load(softserve::testing::TestDataDir() + "/t5-small/spiece.model");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tokenizer_ = std::move(t).value();
  }
  std::vector<int64_t> Ids(const std::string& text) {
    auto ids = tokenizer_->Encode(text, /*add_eos=*/false);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? *ids : std::vector<int64_t>();
  }
  // Feeds the ids one by one; returns the concatenated deltas and how many tokens were fed
  // before stopped() (all of them when it never stopped).
  std::pair<std::string, size_t> Feed(OutputText* text, const std::vector<int64_t>& ids) {
    std::string shown;
    for (size_t i = 0; i < ids.size(); ++i) {
      shown += text->Add(ids[i]);
      if (text->stopped()) return {shown, i + 1};
    }
    return {shown, ids.size()};
  }
  std::unique_ptr<core::Tokenizer> tokenizer_;
};

TEST_F(StopSequenceTokenizerTest, WithoutStopsTheDeltasAddUpToTheDecodedText) {
  const std::vector<int64_t> ids = Ids("Das Haus ist wunderbar. Grüße, äöü € 42!");
  OutputText text(tokenizer_.get(), {});
  auto [shown, fed] = Feed(&text, ids);
  EXPECT_EQ(shown, *tokenizer_->Decode(ids));
  EXPECT_EQ(text.shown(), shown);
  EXPECT_EQ(fed, ids.size());
  EXPECT_FALSE(text.stopped());
}

TEST_F(StopSequenceTokenizerTest, AStopSequenceEndsTheTextBeforeItAndIsNeverShown) {
  const std::vector<int64_t> ids = Ids("Hello world. Goodbye world. Hello again.");
  const std::string decoded = *tokenizer_->Decode(ids);
  OutputText text(tokenizer_.get(), {"again", "Goodbye"});
  auto [shown, fed] = Feed(&text, ids);
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(shown, decoded.substr(0, decoded.find("Goodbye")));
  // It stopped at the token that completed "Goodbye", not later.
  EXPECT_EQ(tokenizer_->Decode({ids.begin(), ids.begin() + static_cast<long>(fed)})->find("Goodbye") + 7,
            tokenizer_->Decode({ids.begin(), ids.begin() + static_cast<long>(fed)})->size());
  EXPECT_EQ(text.Add(ids[0]), "");  // nothing after a stop
  std::string matched;
  EXPECT_EQ(CutAtStopSequence(decoded, {"again", "Goodbye"}, &matched), shown);
  EXPECT_EQ(matched, "Goodbye");
}

TEST_F(StopSequenceTokenizerTest, TextThatMayBeginAStopIsHeldBackUntilItCannot) {
  OutputText text(tokenizer_.get(), {"world!"});
  std::vector<int64_t> ids = Ids("Hello world.");
  const int64_t last = ids.back();
  ids.pop_back();
  ASSERT_EQ(*tokenizer_->Decode(ids), "Hello world");
  auto [shown, fed] = Feed(&text, ids);
  EXPECT_FALSE(text.stopped());
  EXPECT_EQ(shown, "Hello ");  // "world" may still become "world!"
  shown += text.Add(last);
  EXPECT_EQ(shown, "Hello world.");
  EXPECT_FALSE(text.stopped());
}

TEST(StopSequenceTest, CutAtTheEarliestOccurrenceAndValidate) {
  std::string matched = "stale";
  EXPECT_EQ(CutAtStopSequence("a b c d", {"c", "b c", "zz"}, &matched), "a ");
  EXPECT_EQ(matched, "b c");
  EXPECT_EQ(CutAtStopSequence("a b", {"x"}, &matched), "a b");
  EXPECT_EQ(matched, "");
  EXPECT_TRUE(ValidateStopSequences({"\n", "###"}).ok());
  EXPECT_EQ(ValidateStopSequences(std::vector<std::string>(17, "x")).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateStopSequences({""}).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateStopSequences({std::string(241, 'x')}).code(), core::StatusCode::kInvalidArgument);
  // No tokenizer: no text, so nothing to show and nothing stops.
  OutputText none(nullptr, {"x"});
  EXPECT_EQ(none.Add(5), "");
  EXPECT_FALSE(none.stopped());
}

}  // namespace
}  // namespace softserve::server
