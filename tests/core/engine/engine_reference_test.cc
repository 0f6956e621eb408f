// The engine over the real T5 against Hugging Face's generate() references: greedy and beam
// ids and beam scores, plain and soft-prompted, each request alone and in randomized mixes
// (different prompts, arrival orders and decoding modes sharing the batch).
#include <gtest/gtest.h>

#include <future>
#include <random>

#include "core/engine/engine.h"
#include "core/engine/t5_runner.h"
#include "tests/testing/engine_testing.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::softserve::testing::ReferenceCases;
using ::softserve::testing::ReferenceModelDir;

class EngineReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cases_ = std::make_unique<ReferenceCases>(GetParam());
    auto model = T5Model::Load(ReferenceModelDir(GetParam()), ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EngineLimits limits;
    limits.max_rows = 24;
    engine_ = std::make_unique<Engine>(std::make_unique<T5Runner>(std::move(model).value()), limits);
    for (const char* p : {"a", "b"}) {
      prompts_[p] = testing::PromptFromTensor(cases_->Float(std::string("prompt.") + p), p);
    }
  }

  std::vector<int64_t> Row(int i) const { return cases_->Ids("generate.row" + std::to_string(i) + ".input_ids"); }

  // Reference output ids without the leading decoder start token (softserve reports the
  // generated ids after the start token).
  std::vector<int64_t> Expected(const std::string& name) const {
    std::vector<int64_t> ids = cases_->Ids(name);
    return std::vector<int64_t>(ids.begin() + 1, ids.end());
  }

  static DecodingParams Greedy() {
    DecodingParams p;
    p.max_new_tokens = 12;
    return p;
  }
  static DecodingParams Beam4() {
    DecodingParams p;
    p.mode = DecodingMode::kBeam;
    p.num_beams = 4;
    p.length_penalty = 1.0;
    p.early_stopping = EarlyStopping::kHeuristic;
    p.max_new_tokens = 12;
    return p;
  }

  // One expected generation: input row, prompt ("" for none), mode, reference key.
  struct Case {
    int row;
    std::string prompt;
    bool beam;
    std::string key;
  };
  std::vector<Case> AllCases() const {
    std::vector<Case> out;
    for (int i = 0; i < 3; ++i) {
      const std::string r = "row" + std::to_string(i);
      out.push_back({i, "", false, "generate." + r + ".greedy"});
      out.push_back({i, "", true, "generate." + r + ".beam4"});
      for (const char* p : {"a", "b"}) {
        out.push_back({i, p, false, std::string("prompt.") + p + "." + r + ".greedy"});
        out.push_back({i, p, true, std::string("prompt.") + p + "." + r + ".beam4"});
      }
    }
    return out;
  }

  GenerationRequest Request(const Case& c) {
    GenerationRequest req;
    req.common.input_ids = Row(c.row);
    req.common.tenant = c.prompt.empty() ? "plain" : "tenant-" + c.prompt;
    if (!c.prompt.empty()) req.prompt = prompts_[c.prompt];
    req.params = c.beam ? Beam4() : Greedy();
    return req;
  }

  void ExpectMatches(const Case& c, const GenerationResult& r) {
    EXPECT_EQ(r.output_ids, Expected(c.key)) << c.key;
    if (c.beam) {
      const float expected = cases_->Float(c.key + "_score").item<float>();
      EXPECT_NEAR(r.score, expected, 1e-4) << c.key;
    }
  }

  std::unique_ptr<ReferenceCases> cases_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, PromptPtr> prompts_;
};

TEST_P(EngineReferenceTest, EveryCaseAloneMatchesHuggingFace) {
  for (const Case& c : AllCases()) {
    auto r = testing::GenerateSync(engine_.get(), Request(c));
    ASSERT_TRUE(r.ok()) << c.key << ": " << r.status().ToString();
    ExpectMatches(c, *r);
  }
}

TEST_P(EngineReferenceTest, AllCasesSubmittedTogetherMatch) {
  std::vector<Case> cases = AllCases();
  std::vector<std::future<StatusOr<GenerationResult>>> futures;
  for (const Case& c : cases) futures.push_back(testing::GenerateAsync(engine_.get(), Request(c)));
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = futures[i].get();
    ASSERT_TRUE(r.ok()) << cases[i].key << ": " << r.status().ToString();
    ExpectMatches(cases[i], *r);
  }
}

// Randomized mixes: shuffled order, staggered arrivals (some requests arrive while others are
// mid-generation), duplicates, and a batch limit small enough that requests wait and join as
// rows free up.
TEST_P(EngineReferenceTest, RandomizedMixesAndArrivalsMatch) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<Case> cases = AllCases();
    std::vector<Case> extra(cases.begin(), cases.begin() + 6);
    cases.insert(cases.end(), extra.begin(), extra.end());
    std::shuffle(cases.begin(), cases.end(), rng);
    std::vector<std::future<StatusOr<GenerationResult>>> futures;
    for (size_t i = 0; i < cases.size(); ++i) {
      futures.push_back(testing::GenerateAsync(engine_.get(), Request(cases[i])));
      if (rng() % 3 == 0) futures[i].wait();  // let the batch run on before the next arrives
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      auto r = futures[i].get();
      ASSERT_TRUE(r.ok()) << cases[i].key << ": " << r.status().ToString();
      ExpectMatches(cases[i], *r);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(References, EngineReferenceTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve::core
