// Generation controls end to end, on both transports: stop sequences (matched on the decoded
// text, cut from the result) and time limits (partial output, not an error). The expected
// outputs come from the same request without the control: the greedy output (which the
// reference tests check against Hugging Face) cut where the control says.
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/server_fixture.h"

namespace softserve {
namespace {

using client::v1::FinishReason;
using client::v1::GenerateRequest;
using client::v1::Generation;

constexpr const char* kText = "translate English to German: the house is small and the garden is green";

class E2eGenerationControlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::ServerOptions o;
    o.model_dir = testing::VariedTextModelDir();
    server_ = new testing::ServerProcess(o);
  }
  static void TearDownTestSuite() { delete server_; }

  static GenerateRequest Greedy(int max_new, const std::vector<std::string>& stops = {}) {
    GenerateRequest r;
    r.add_inputs()->set_text(kText);
    r.add_inputs()->set_text("hello world");
    r.mutable_parameters()->set_max_new_tokens(max_new);
    r.mutable_parameters()->set_min_new_tokens(max_new);  // no early eos: long texts to cut
    for (const std::string& s : stops) r.mutable_parameters()->add_stop_sequences(s);
    return r;
  }
  static std::vector<Generation> Generate(const GenerateRequest& r) {
    auto g = server_->ClientFor("alice")->Generate(r);
    EXPECT_TRUE(g.ok()) << g.status.error_message();
    return g.ok() ? std::vector<Generation>(g.value.results().begin(), g.value.results().end())
                  : std::vector<Generation>(r.inputs_size());
  }
  static testing::ServerProcess* server_;
};
testing::ServerProcess* E2eGenerationControlsTest::server_ = nullptr;

// A piece of `text` from its middle that does not occur earlier in it.
std::string MiddlePiece(const std::string& text, size_t* at) {
  for (size_t p = text.size() / 2; p + 4 < text.size(); ++p) {
    const std::string piece = text.substr(p, 4);
    if (text.find(piece) == p && piece.find(' ') == std::string::npos) {
      *at = p;
      return piece;
    }
  }
  *at = std::string::npos;
  return "";
}

bool IsPrefix(const Generation& part, const Generation& whole) {
  if (part.output_ids_size() > whole.output_ids_size()) return false;
  for (int i = 0; i < part.output_ids_size(); ++i) {
    if (part.output_ids(i) != whole.output_ids(i)) return false;
  }
  return true;
}

TEST_F(E2eGenerationControlsTest, AStopSequenceEndsTheOutputBeforeItOnBothRpcs) {
  const std::vector<Generation> full = Generate(Greedy(30));
  size_t at = 0;
  const std::string stop = MiddlePiece(full[0].text(), &at);
  ASSERT_FALSE(stop.empty()) << "no usable piece in: " << full[0].text();
  const GenerateRequest with_stop = Greedy(30, {"never-in-this-text", stop});
  const std::vector<Generation> cut = Generate(with_stop);
  EXPECT_EQ(cut[0].text(), full[0].text().substr(0, at));
  EXPECT_EQ(cut[0].finish_reason(), client::v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(cut[0].stop_sequence(), stop);
  // Generation ended at the token that completed the stop sequence: a prefix of the full output.
  EXPECT_TRUE(IsPrefix(cut[0], full[0]));
  EXPECT_LT(cut[0].output_ids_size(), full[0].output_ids_size());
  // The other input of the same call ends on its own terms.
  if (full[1].text().find(stop) == std::string::npos) {
    EXPECT_EQ(cut[1].text(), full[1].text());
    EXPECT_EQ(cut[1].finish_reason(), full[1].finish_reason());
  }
  // Streaming: the deltas never show the stop sequence and add up to the same text.
  std::string streamed;
  Generation final;
  grpc::Status s = server_->ClientFor("alice")->GenerateStream(with_stop, [&](const client::v1::GenerateStreamResponse& m) {
    if (m.input_index() != 0) return;
    streamed += m.text_delta();
    if (m.has_final()) final = m.final();
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(streamed, cut[0].text());
  EXPECT_EQ(final.text(), cut[0].text());
  EXPECT_EQ(final.finish_reason(), client::v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(final.stop_sequence(), stop);
}

TEST_F(E2eGenerationControlsTest, StopSequencesAreValidated) {
  auto client = server_->ClientFor("alice");
  auto many = client->Generate(Greedy(5, std::vector<std::string>(17, "x")));
  EXPECT_EQ(many.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(many.status.error_message().find("at most 16"), std::string::npos) << many.status.error_message();
  auto empty = client->Generate(Greedy(5, {""}));
  EXPECT_EQ(empty.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  GenerateRequest beam = Greedy(5, {"x"});
  beam.mutable_parameters()->set_mode(client::v1::DECODING_MODE_BEAM);
  auto b = client->Generate(beam);
  EXPECT_EQ(b.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(b.status.error_message().find("beam"), std::string::npos) << b.status.error_message();
}

TEST_F(E2eGenerationControlsTest, ATimeLimitReturnsThePartialOutputNotAnError) {
  const std::vector<Generation> full = Generate(Greedy(400));
  GenerateRequest limited = Greedy(400);
  limited.mutable_parameters()->set_time_limit_ms(1);
  const std::vector<Generation> part = Generate(limited);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(part[i].finish_reason(), client::v1::FINISH_REASON_TIME_LIMIT) << i;
    EXPECT_LT(part[i].output_ids_size(), 400) << i;
    EXPECT_TRUE(IsPrefix(part[i], full[i])) << i;
    EXPECT_EQ(full[i].text().rfind(part[i].text(), 0), 0u) << i;
  }
  // Streaming: the final message carries the reason, the stream ends OK.
  Generation final;
  grpc::Status s = server_->ClientFor("alice")->GenerateStream(limited, [&](const client::v1::GenerateStreamResponse& m) {
    if (m.has_final() && m.input_index() == 0) final = m.final();
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(final.finish_reason(), client::v1::FINISH_REASON_TIME_LIMIT);
  GenerateRequest negative = Greedy(4);
  negative.mutable_parameters()->set_time_limit_ms(-5);
  EXPECT_EQ(server_->ClientFor("alice")->Generate(negative).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace softserve
