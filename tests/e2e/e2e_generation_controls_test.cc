// Generation controls end to end, on both transports: stop sequences (matched on the decoded
// text, cut from the result), time limits (partial output, not an error) and CancelGeneration
// (another connection ends a call early; it returns what it has). The expected
// outputs come from the same request without the control: the greedy output (which the
// reference tests check against Hugging Face) cut where the control says.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
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

// A client whose calls carry `request_id` as their x-request-id.
std::shared_ptr<client::Client> ClientWithRequestId(testing::ServerProcess* server, const std::string& tenant,
                                                   const std::string& request_id) {
  client::ClientOptions o = server->ClientFor(tenant)->options();
  o.request_id = request_id;
  auto c = client::Client::Connect(o);
  EXPECT_TRUE(c.ok());
  return c.value;
}

client::Result<client::v1::CancelGenerationResponse> Cancel(testing::ServerProcess* server, const std::string& tenant,
                                                            const std::string& request_id) {
  client::v1::CancelGenerationRequest r;
  r.set_request_id(request_id);
  return server->ClientFor(tenant)->CancelGeneration(r);
}

// A stream cancelled from another connection: every input ends with FINISH_REASON_CANCELLED
// and the tokens it had (a prefix of the uncancelled output), and the stream ends OK. Another
// tenant cannot reach the call by its id.
TEST_F(E2eGenerationControlsTest, CancelGenerationEndsAStreamWithWhatItHas) {
  const std::vector<Generation> full = Generate(Greedy(500));
  const std::string id = "cancel-stream-" + std::to_string(::getpid());
  auto streaming = ClientWithRequestId(server_, "alice", id);
  std::vector<Generation> finals(2);
  std::vector<std::string> streamed(2);
  grpc::Status bob_status, alice_status;
  bool asked = false;
  grpc::Status s = streaming->GenerateStream(Greedy(500), [&](const client::v1::GenerateStreamResponse& m) {
    streamed[m.input_index()] += m.text_delta();
    if (m.has_final()) finals[m.input_index()] = m.final();
    if (asked) return;
    asked = true;  // at the first token: the call is running
    bob_status = Cancel(server_, "bob", id).status;
    alice_status = Cancel(server_, "alice", id).status;
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(bob_status.error_code(), grpc::StatusCode::NOT_FOUND) << bob_status.error_message();
  ASSERT_TRUE(alice_status.ok()) << alice_status.error_message();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(finals[i].finish_reason(), client::v1::FINISH_REASON_CANCELLED) << i;
    EXPECT_LT(finals[i].output_ids_size(), 500) << i;
    EXPECT_TRUE(IsPrefix(finals[i], full[i])) << i;
    EXPECT_EQ(streamed[i], finals[i].text()) << i;
  }
  // Over: the id is unknown again.
  EXPECT_EQ(Cancel(server_, "alice", id).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// A unary Generate cancelled from another connection returns OK with the partial outputs.
TEST_F(E2eGenerationControlsTest, CancelGenerationEndsAUnaryCallWithWhatItHas) {
  const std::vector<Generation> full = Generate(Greedy(500));
  const std::string id = "cancel-unary-" + std::to_string(::getpid());
  auto calling = ClientWithRequestId(server_, "alice", id);
  std::atomic<bool> done{false};
  client::Result<client::v1::GenerateResponse> r;
  std::thread t([&] {
    r = calling->Generate(Greedy(500));
    done = true;
  });
  bool cancelled = false;
  while (!done && !cancelled) {
    cancelled = Cancel(server_, "alice", id).ok();  // NOT_FOUND until the call has begun
    if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.join();
  ASSERT_TRUE(cancelled) << "the call finished before it could be cancelled";
  ASSERT_TRUE(r.ok()) << r.status.error_message();
  ASSERT_EQ(r.value.results_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const Generation& g = r.value.results(i);
    EXPECT_EQ(g.finish_reason(), client::v1::FINISH_REASON_CANCELLED) << i;
    EXPECT_LT(g.output_ids_size(), 500) << i;
    EXPECT_TRUE(IsPrefix(g, full[i])) << i;
  }
  EXPECT_EQ(Cancel(server_, "alice", "").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Cancel(server_, "alice", std::string(129, 'x')).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace softserve
