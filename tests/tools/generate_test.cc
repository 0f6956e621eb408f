// softserve-generate as a user runs it: a real process on the reference checkpoints, its --json
// output compared with the Hugging Face references; bad input gives a one-line error and a
// non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <algorithm>
#include <cstdlib>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/temp_dir.h"

namespace softserve {
namespace {

using core::JsonValue;
using testing::ReferenceCases;
using testing::ReferenceModelDir;

struct RunResult {
  int exit_code;
  std::string out;
  std::string err;
};

RunResult RunGenerate(const std::string& args) {
  // Test programs run in parallel under ctest: each call gets its own stderr file.
  static int calls = 0;
  const std::string err_file = ::testing::TempDir() + "/generate_stderr." + std::to_string(::getpid()) + "." +
                               std::to_string(calls++) + ".txt";
  const std::string cmd = std::string(SOFTSERVE_BIN_DIR) + "/softserve-generate " + args + " 2>" + err_file;
  FILE* p = ::popen(cmd.c_str(), "r");
  RunResult r{-1, "", ""};
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = core::ReadFileToString(err_file).value();
  std::remove(err_file.c_str());
  return r;
}

std::string IdsArg(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::vector<int64_t> JsonIds(const JsonValue& v) {
  std::vector<int64_t> out;
  for (const auto& e : v.array()) out.push_back(e.int_value());
  return out;
}

class GenerateCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<int64_t> Expected(const ReferenceCases& c, const std::string& name) {
    std::vector<int64_t> ids = c.Ids(name);
    return std::vector<int64_t>(ids.begin() + 1, ids.end());  // after the decoder start token
  }
};

TEST_P(GenerateCliTest, JsonGreedyBeamPromptAndScoresMatchReference) {
  ReferenceCases cases(GetParam());
  const std::string model = "--model " + ReferenceModelDir(GetParam());
  for (int i = 0; i < 3; ++i) {
    const std::string row = "generate.row" + std::to_string(i);
    const std::string input = " --input-ids " + IdsArg(cases.Ids(row + ".input_ids")) + " --max-new-tokens 12 --json";
    RunResult greedy = RunGenerate(model + input);
    ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
    auto g = core::ParseJson(greedy.out);
    ASSERT_TRUE(g.ok()) << greedy.out;
    EXPECT_EQ(JsonIds(*g->Find("output_ids")), Expected(cases, row + ".greedy"));
    EXPECT_TRUE(g->Find("text")->is_null());  // the tiny models have no tokenizer
    RunResult beam = RunGenerate(model + input + " --num-beams 4");
    ASSERT_EQ(beam.exit_code, 0) << beam.err;
    auto b = core::ParseJson(beam.out);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(JsonIds(*b->Find("output_ids")), Expected(cases, row + ".beam4"));
  }
  // Soft prompt a from a safetensors file, plus the rank candidates as score targets.
  testing::ScopedTempDir dir;
  const std::string prompt_file = dir.File("prompt_a.safetensors");
  ASSERT_TRUE(core::WriteFileDurably(prompt_file, testing::RawPromptFile(cases.Float("prompt.a"))).ok());
  at::Tensor cands = cases.Int("rank.candidates");
  at::Tensor mask = cases.Int("rank.candidates_mask");
  std::string targets;
  for (int64_t c = 0; c < cands.size(0); ++c) {
    std::vector<int64_t> t;
    for (int64_t k = 0; k < mask[c].sum().item<int64_t>(); ++k) t.push_back(cands[c][k].item<int64_t>());
    targets += (c ? ";" : "") + IdsArg(t);
  }
  RunResult prompted = RunGenerate(model + " --input-ids " + IdsArg(cases.Ids("rank.input_ids")) + " --prompt " +
                           prompt_file + " --max-new-tokens 12 --json --score-target-ids \"" + targets + "\"");
  ASSERT_EQ(prompted.exit_code, 0) << prompted.err;
  auto p = core::ParseJson(prompted.out);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(JsonIds(*p->Find("output_ids")), Expected(cases, "prompt.a.row0.greedy"));
  at::Tensor totals = cases.Float("rank.total_logprob");
  const auto& scores = p->Find("scores")->array();
  ASSERT_EQ(scores.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(scores[c].number(), totals[c].item<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(References, GenerateCliTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

// The README's first generate, on the default model exactly as scripts/make-default-model.sh
// makes it (t5-small's shape, real tokenizer, random weights): it must print varied text, not
// the start token over and over (what a tied, HF-initialised random T5 does).
TEST(DefaultModelTest, TheRandomStandInWritesVariedTextThatDependsOnTheInput) {
  testing::ScopedTempDir dir;
  const std::string model = dir.File("t5-small-random");
  const std::string bin_dir = SOFTSERVE_BIN_DIR;
  const std::string make = "cd '" + std::string(SOFTSERVE_SOURCE_DIR) + "' && BUILD_DIR='" +
                           bin_dir.substr(0, bin_dir.rfind('/')) + "' bash scripts/make-default-model.sh '" + model +
                           "' > /dev/null";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  std::vector<std::vector<int64_t>> outputs;
  for (const char* text : {"translate English to German: The house is wonderful.", "summarize: the cat sat on the mat"}) {
    RunResult r = RunGenerate("--model '" + model + "' --text '" + text + "' --max-new-tokens 16 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = core::ParseJson(r.out);
    ASSERT_TRUE(j.ok()) << r.out;
    std::vector<int64_t> ids = JsonIds(*j->Find("output_ids"));
    ASSERT_EQ(ids.size(), 16u) << r.out;
    std::vector<int64_t> distinct = ids;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    EXPECT_GE(distinct.size(), 3u) << text << ": " << r.out;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 0) << "pad tokens in " << r.out;
    ASSERT_TRUE(j->Find("text")->is_string());
    EXPECT_FALSE(j->Find("text")->string_value().empty()) << r.out;
    outputs.push_back(ids);
  }
  EXPECT_NE(outputs[0], outputs[1]);
}

TEST(GenerateCliErrorsTest, BadArgumentsAndFilesGiveOneLineErrors) {
  const std::string model = "--model " + ReferenceModelDir("t5-tiny-v1_0");
  testing::ScopedTempDir dir;
  const std::string bad_prompt = dir.File("bad_prompt.safetensors");
  ASSERT_TRUE(core::WriteFileDurably(bad_prompt, "not a safetensors file").ok());
  struct Case { std::string args; int code; std::string needle; };
  for (const Case& c : std::vector<Case>{
           {"", 2, "--model is required"},
           {model, 2, "exactly one of --text and --input-ids"},
           {model + " --input-ids 1,x", 2, "not a non-negative token id"},
           {model + " --input-ids 1,2 --max-new-tokens abc", 2, "needs an integer"},
           {model + " --input-ids 1,2 --frobnicate", 2, "unknown flag"},
           {model + " --input-ids 1,999", 1, "outside the vocabulary"},
           {model + " --input-ids 1,2 --max-new-tokens 0", 1, "max_new_tokens"},
           {model + " --input-ids 1,2 --prompt " + bad_prompt, 1, "--prompt"},
           {model + " --input-ids 1,2 --prompt /nonexistent", 1, "does not exist"},
           {"--model /nonexistent --input-ids 1", 1, "does not exist"},
           {model + " --text hello", 1, "spiece.model"},
           {model + " --input-ids 1 --device tpu", 2, "unknown device"},
       }) {
    RunResult r = RunGenerate(c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
}

}  // namespace
}  // namespace softserve
