// The real server binary on 127.0.0.1, the real client, prompts uploaded in every format by
// different tenants, and every inference RPC compared with the Hugging Face references — with
// the tenants' requests running concurrently (mixed tenants, mixed prompts in one batch).
#include <gtest/gtest.h>

#include <map>

#include <future>
#include <thread>

#include "core/common/file_util.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/temp_dir.h"

namespace softserve {
namespace {

using client::Client;
using client::PromptUpload;
namespace v1 = ::softserve::v1;

class E2eReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  static std::vector<int64_t> Tail(const std::vector<int64_t>& ids) { return {ids.begin() + 1, ids.end()}; }

  v1::GenerateRequest Request(const std::vector<int64_t>& ids, const std::string& prompt, bool beam) {
    v1::GenerateRequest r;
    r.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    if (!prompt.empty()) r.mutable_prompt()->set_name(prompt);
    r.mutable_parameters()->set_max_new_tokens(12);
    if (beam) {
      r.mutable_parameters()->set_mode(v1::DECODING_MODE_BEAM);
      r.mutable_parameters()->set_num_beams(4);
    }
    return r;
  }

  std::vector<int64_t> Ids(const v1::Generation& g) { return {g.output_ids().begin(), g.output_ids().end()}; }
};

TEST_P(E2eReferenceTest, UploadsInEveryFormatAndEveryRpcMatchesHuggingFace) {
  testing::ReferenceCases cases(GetParam());
  testing::ServerProcess server({testing::ReferenceModelDir(GetParam())});
  auto alice = server.ClientFor("alice");
  auto bob = server.ClientFor("bob");

  // alice: prompt a as a raw file and the residual checkpoint; bob: prompt b as a PEFT adapter.
  PromptUpload raw;
  raw.name = "task-a";
  raw.bytes = testing::RawPromptFile(cases.Float("prompt.a"));
  raw.chunk_bytes = 1000;  // several chunks
  auto up_a = alice->UploadPrompt(raw);
  ASSERT_TRUE(up_a.ok()) << up_a.status.error_message();
  EXPECT_EQ(up_a.value.rows(), 5);
  PromptUpload residual;
  ASSERT_TRUE(client::ReadPromptUpload(cases.dir() + "/residual_prompt.safetensors", "task-res", "auto", &residual).ok());
  EXPECT_EQ(residual.format, v1::PROMPT_FORMAT_RESIDUAL);
  ASSERT_TRUE(alice->UploadPrompt(residual).ok());
  at::Tensor b = cases.Float("prompt.b");
  testing::ScopedTempDir tmp;
  const std::string peft_dir = tmp.File("peft_b");
  ASSERT_TRUE(core::MakeDirectories(peft_dir).ok());
  ASSERT_TRUE(core::WriteFileDurably(peft_dir + "/adapter_config.json", testing::PeftAdapterConfig(b.size(0), 64)).ok());
  ASSERT_TRUE(core::WriteFileDurably(peft_dir + "/adapter_model.safetensors", testing::PeftAdapterWeights(b)).ok());
  PromptUpload peft;
  ASSERT_TRUE(client::ReadPromptUpload(peft_dir, "task-b", "auto", &peft).ok());
  auto up_b = bob->UploadPrompt(peft);
  ASSERT_TRUE(up_b.ok()) << up_b.status.error_message();
  EXPECT_EQ(up_b.value.rows(), 3);  // 6 rows stored, 3 served
  EXPECT_EQ(up_b.value.format(), v1::PROMPT_FORMAT_PEFT);

  // Generation: both tenants at once, greedy and beam, plain and prompted.
  struct Expect { std::shared_ptr<Client> client; int row; std::string prompt; bool beam; std::string key; };
  std::vector<Expect> expects;
  for (int i = 0; i < 3; ++i) {
    const std::string r = "row" + std::to_string(i);
    expects.push_back({alice, i, "task-a", false, "prompt.a." + r + ".greedy"});
    expects.push_back({alice, i, "task-a", true, "prompt.a." + r + ".beam4"});
    expects.push_back({bob, i, "task-b", false, "prompt.b." + r + ".greedy"});
    expects.push_back({bob, i, "task-b", true, "prompt.b." + r + ".beam4"});
    expects.push_back({bob, i, "", false, "generate." + r + ".greedy"});
  }
  expects.push_back({alice, 0, "task-res", false, "residual.row0.greedy"});
  expects.push_back({alice, 2, "task-res", false, "residual.row2.greedy"});
  std::vector<std::future<client::Result<v1::GenerateResponse>>> futures;
  for (const Expect& e : expects) {
    auto req = Request(cases.Ids("generate.row" + std::to_string(e.row) + ".input_ids"), e.prompt, e.beam);
    futures.push_back(std::async(std::launch::async, [e, req] { return e.client->Generate(req); }));
  }
  for (size_t k = 0; k < expects.size(); ++k) {
    auto r = futures[k].get();
    ASSERT_TRUE(r.ok()) << expects[k].key << ": " << r.status.error_message();
    EXPECT_EQ(Ids(r.value.results(0)), Tail(cases.Ids(expects[k].key))) << expects[k].key;
    if (expects[k].beam) {
      EXPECT_NEAR(r.value.results(0).score(), cases.Float(expects[k].key + "_score").item<float>(), 1e-4);
    }
  }

  // Several inputs in one call.
  v1::GenerateRequest batch = Request(cases.Ids("generate.row0.input_ids"), "task-a", false);
  for (int i : {1, 2}) {
    auto ids = cases.Ids("generate.row" + std::to_string(i) + ".input_ids");
    batch.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  }
  auto batched = alice->Generate(batch);
  ASSERT_TRUE(batched.ok());
  ASSERT_EQ(batched.value.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ids(batched.value.results(i)), Tail(cases.Ids("prompt.a.row" + std::to_string(i) + ".greedy")));
  }
  EXPECT_EQ(batched.value.prompt().name(), "task-a");

  // Streaming: the streamed tokens are the reference output.
  std::vector<int64_t> streamed;
  std::vector<int64_t> final_ids;
  grpc::Status s = bob->GenerateStream(Request(cases.Ids("generate.row1.input_ids"), "task-b", false),
                                       [&](const v1::GenerateStreamResponse& m) {
                                         if (m.has_final()) final_ids = Ids(m.final());
                                         else streamed.push_back(m.token_id());
                                       });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(streamed, Tail(cases.Ids("prompt.b.row1.greedy")));
  EXPECT_EQ(final_ids, streamed);

  // Score: the rank case with prompt a.
  v1::ScoreRequest score;
  auto in = cases.Ids("rank.input_ids");
  score.mutable_input()->mutable_ids()->mutable_ids()->Add(in.begin(), in.end());
  score.mutable_prompt()->set_name("task-a");
  at::Tensor cands = cases.Int("rank.candidates"), mask = cases.Int("rank.candidates_mask");
  for (int64_t c = 0; c < cands.size(0); ++c) {
    auto* t = score.add_targets()->mutable_ids();
    for (int64_t k = 0; k < mask[c].sum().item<int64_t>(); ++k) t->add_ids(cands[c][k].item<int64_t>());
  }
  auto scored = alice->Score(score);
  ASSERT_TRUE(scored.ok()) << scored.status.error_message();
  at::Tensor totals = cases.Float("rank.total_logprob");
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(scored.value.scores(c).total_logprob(), totals[c].item<double>(), 1e-3);
  EXPECT_EQ(scored.value.best(), cases.json().Find("rank")->Find("order_best_first")->array()[0].int_value());

  // Ensemble of alice's two prompts on row 0: each member equals its reference.
  v1::EnsembleRequest ens;
  auto row0 = cases.Ids("generate.row0.input_ids");
  ens.mutable_input()->mutable_ids()->mutable_ids()->Add(row0.begin(), row0.end());
  ens.add_prompts()->set_name("task-a");
  ens.add_prompts()->set_name("task-res");
  ens.add_prompts()->set_name("task-a");
  ens.mutable_parameters()->set_max_new_tokens(12);
  auto voted = alice->Ensemble(ens);
  ASSERT_TRUE(voted.ok()) << voted.status.error_message();
  EXPECT_EQ(Ids(voted.value.members(0)), Tail(cases.Ids("prompt.a.row0.greedy")));
  EXPECT_EQ(Ids(voted.value.members(1)), Tail(cases.Ids("residual.row0.greedy")));
  EXPECT_EQ(voted.value.winner(), 0);
  EXPECT_EQ(Ids(voted.value.result()), Tail(cases.Ids("prompt.a.row0.greedy")));

  // Explain: one entry per prompt row, neighbours best first.
  v1::ExplainRequest ex;
  ex.mutable_prompt()->set_name("task-b");
  ex.set_top_k(4);
  auto explained = bob->Explain(ex);
  ASSERT_TRUE(explained.ok());
  ASSERT_EQ(explained.value.positions_size(), 3);
  for (const auto& pos : explained.value.positions()) {
    ASSERT_EQ(pos.neighbors_size(), 4);
    for (int k = 1; k < 4; ++k) EXPECT_GE(pos.neighbors(k - 1).similarity(), pos.neighbors(k).similarity());
  }

  // The prompts survive a restart of the server with the same store.
  const std::string store = server.store_dir();
  EXPECT_EQ(server.Terminate(), 0);
  testing::ServerProcess again({testing::ReferenceModelDir(GetParam()), {{"alice", "alice-key"}}, {}, store});
  auto after = again.ClientFor("alice")->Generate(Request(cases.Ids("generate.row2.input_ids"), "task-res", false));
  ASSERT_TRUE(after.ok()) << after.status.error_message();
  EXPECT_EQ(Ids(after.value.results(0)), Tail(cases.Ids("residual.row2.greedy")));
}

// truncate_input_tokens keeps an input's last N tokens: junk in front of a reference input,
// truncated away, gives Hugging Face's ids for the reference input itself; without truncation
// the same input is over the server's max_input_tokens and refused.
TEST_P(E2eReferenceTest, TruncatedInputsGenerateTheReferenceIdsOfTheirTail) {
  testing::ReferenceCases cases(GetParam());
  const std::vector<int64_t> ref = cases.Ids("generate.row1.input_ids");
  testing::ServerOptions options{testing::ReferenceModelDir(GetParam())};
  options.extra_args = {"--max-input-tokens", std::to_string(ref.size())};
  testing::ServerProcess server(options);
  auto alice = server.ClientFor("alice");
  std::vector<int64_t> longer = {7, 8, 9, 10, 11};
  longer.insert(longer.end(), ref.begin(), ref.end());

  auto refused = alice->Generate(Request(longer, "", false));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.status.error_message();

  v1::GenerateRequest truncated = Request(longer, "", false);
  truncated.mutable_parameters()->set_truncate_input_tokens(static_cast<int32_t>(ref.size()));
  auto r = alice->Generate(truncated);
  ASSERT_TRUE(r.ok()) << r.status.error_message();
  EXPECT_EQ(Ids(r.value.results(0)), Tail(cases.Ids("generate.row1.greedy")));
  EXPECT_EQ(r.value.results(0).input_tokens(), static_cast<int32_t>(ref.size()));
  std::vector<int64_t> streamed;
  grpc::Status s = alice->GenerateStream(truncated, [&](const v1::GenerateStreamResponse& m) {
    if (!m.has_final()) streamed.push_back(m.token_id());
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(streamed, Tail(cases.Ids("generate.row1.greedy")));

  // An input already within the limit is untouched; a negative count is refused.
  v1::GenerateRequest shorter = Request(ref, "", false);
  shorter.mutable_parameters()->set_truncate_input_tokens(1000);
  auto same = alice->Generate(shorter);
  ASSERT_TRUE(same.ok()) << same.status.error_message();
  EXPECT_EQ(Ids(same.value.results(0)), Tail(cases.Ids("generate.row1.greedy")));
  shorter.mutable_parameters()->set_truncate_input_tokens(-1);
  auto negative = alice->Generate(shorter);
  EXPECT_EQ(negative.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(negative.status.error_message().find("truncate_input_tokens"), std::string::npos)
      << negative.status.error_message();
}

// Several inputs, one of them bad: that input reports its own error, the others complete with
// Hugging Face's outputs, on Generate and GenerateStream. A single bad input is the call's error.
TEST_P(E2eReferenceTest, ABadInputReportsItsOwnErrorAndTheOthersMatchHuggingFace) {
  testing::ReferenceCases cases(GetParam());
  testing::ServerProcess server({testing::ReferenceModelDir(GetParam())});
  auto alice = server.ClientFor("alice");
  v1::GenerateRequest r = Request(cases.Ids("generate.row0.input_ids"), "", false);
  r.add_inputs()->mutable_ids()->add_ids(99999);  // outside the vocabulary
  const std::vector<int64_t> row1 = cases.Ids("generate.row1.input_ids");
  r.add_inputs()->mutable_ids()->mutable_ids()->Add(row1.begin(), row1.end());
  r.add_inputs();  // no input at all
  auto g = alice->Generate(r);
  ASSERT_TRUE(g.ok()) << g.status.error_message();
  ASSERT_EQ(g.value.results_size(), 4);
  EXPECT_EQ(Ids(g.value.results(0)), Tail(cases.Ids("generate.row0.greedy")));
  EXPECT_EQ(Ids(g.value.results(2)), Tail(cases.Ids("generate.row1.greedy")));
  for (int bad : {1, 3}) {
    const v1::Generation& e = g.value.results(bad);
    EXPECT_EQ(e.finish_reason(), v1::FINISH_REASON_ERROR) << bad;
    EXPECT_EQ(e.error_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << bad;
    EXPECT_TRUE(e.output_ids().empty()) << bad;
  }
  EXPECT_NE(g.value.results(1).error_message().find("vocabulary"), std::string::npos) << g.value.results(1).error_message();
  EXPECT_NE(g.value.results(3).error_message().find("input 3"), std::string::npos) << g.value.results(3).error_message();
  // The stream: a final message with the error for the bad inputs, tokens for the others.
  std::map<int, v1::Generation> finals;
  std::map<int, int> tokens;
  grpc::Status s = alice->GenerateStream(r, [&](const v1::GenerateStreamResponse& m) {
    if (m.has_final()) finals[m.input_index()] = m.final();
    else ++tokens[m.input_index()];
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(finals.size(), 4u);
  EXPECT_EQ(Ids(finals[0]), Tail(cases.Ids("generate.row0.greedy")));
  EXPECT_EQ(finals[1].finish_reason(), v1::FINISH_REASON_ERROR);
  EXPECT_EQ(tokens[1], 0);
  EXPECT_EQ(Ids(finals[2]), Tail(cases.Ids("generate.row1.greedy")));
  // One input only: its problem is the call's status.
  v1::GenerateRequest one = Request({99999}, "", false);
  EXPECT_EQ(alice->Generate(one).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

INSTANTIATE_TEST_SUITE_P(References, E2eReferenceTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve
