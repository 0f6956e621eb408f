// softserve-train end to end: run as a user runs it on the reference batch (ids rows, all of the
// data every step, file order, the reference's initial tensors) and compare its JSON progress and
// the files it writes with testdata/prompt-training's stored trajectories (README test 4
// tolerances: parameters 0.005, losses 0.0005). The adapter it writes must parse as a PEFT
// prompt-tuning adapter, and the residual file must fold to the adapter's prompt.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/model/safetensors.h"
#include "core/model/tensor_convert.h"
#include "core/prompts/prompt_formats.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/temp_dir.h"

namespace softserve {
namespace {

using testing::ReferenceCases;

std::string Shell(const std::string& cmd, int* code) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string Ids(const at::Tensor& row, int64_t skip_value) {
  std::string s = "[";
  bool first = true;
  for (int64_t i = 0; i < row.numel(); ++i) {
    const int64_t v = row[i].item<int64_t>();
    if (v == skip_value) continue;
    s += (first ? "" : ",") + std::to_string(v);
    first = false;
  }
  return s + "]";
}

at::Tensor Read(const std::string& path, const std::string& name) {
  auto file = core::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok() || (*file)->Find(name) == nullptr) return at::Tensor();
  auto t = core::FloatTensorFromView(*(*file)->Find(name), at::TensorOptions().dtype(at::kFloat), name);
  return t.ok() ? *t : at::Tensor();
}

core::PromptLimits Limits() {
  core::PromptLimits l;
  l.d_model = 64;  // the reference models' width
  return l;
}

class TrainCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cases_ = std::make_unique<ReferenceCases>(
        ReferenceCases::InDir(testing::TestDataDir() + "/prompt-training/" + GetParam()));
    // The reference batch as data rows: inputs without padding, targets without -100.
    const at::Tensor ids = cases_->Int("batch.input_ids"), labels = cases_->Int("batch.labels");
    std::string data;
    for (int64_t i = 0; i < ids.size(0); ++i) {
      data += "{\"input_ids\": " + Ids(ids[i], 0) + ", \"target_ids\": " + Ids(labels[i], -100) + "}\n";
    }
    ASSERT_TRUE(core::WriteFileDurably(tmp_.File("train.jsonl"), data).ok());
  }

  // Runs softserve-train from `init` (a safetensors file) with the reference's settings.
  std::vector<core::JsonValue> Train(const std::string& method, const std::string& optimizer, const std::string& init,
                                     const std::string& out) {
    int code = 0;
    const std::string output = Shell(std::string(SOFTSERVE_BIN_DIR) + "/softserve-train --model " +
                                         testing::ReferenceModelDir(GetParam()) + " --data " + tmp_.File("train.jsonl") +
                                         " --out " + out + " --method " + method + " --optimizer " + optimizer +
                                         " --init " + init + " --steps 3 --batch-size 64 --no-shuffle --json",
                                     &code);
    EXPECT_EQ(code, 0) << output;
    std::vector<core::JsonValue> lines;
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) {
      auto j = core::ParseJson(line);
      if (j.ok() && j->is_object() && j->Find("step") != nullptr) lines.push_back(*j);
    }
    return lines;
  }

  // Step k's line reports the loss before step k: the loss at state k-1.
  void ExpectLosses(const std::vector<core::JsonValue>& lines, const std::string& traj) {
    const at::Tensor losses = cases_->Float(traj + ".loss");
    ASSERT_EQ(lines.size(), 3u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(lines[k].Find("step")->int_value(), k + 1);
      EXPECT_LE(std::abs(lines[k].Find("loss")->number() - losses[k].item<double>()), 0.0005) << traj << " step " << k + 1;
    }
  }

  std::unique_ptr<ReferenceCases> cases_;
  testing::ScopedTempDir tmp_;
};

TEST_P(TrainCliTest, PromptTuningFollowsTheAdamWTrajectoryAndWritesAPeftAdapter) {
  ASSERT_TRUE(core::WriteFileDurably(tmp_.File("init.safetensors"), testing::RawPromptFile(cases_->Float("pt.prompt"))).ok());
  const auto lines = Train("prompt", "adamw", tmp_.File("init.safetensors"), tmp_.File("out"));
  ExpectLosses(lines, "pt.adamw");
  const at::Tensor written = Read(tmp_.File("out/adapter_model.safetensors"), "prompt_embeddings");
  ASSERT_TRUE(written.defined());
  const at::Tensor expected = cases_->Float("pt.adamw.prompt")[2];
  ASSERT_EQ(written.size(0), 2 * expected.size(0));  // SEQ_2_SEQ_LM: 2N rows
  EXPECT_LE((written.slice(0, 0, expected.size(0)) - expected).abs().max().item<double>(), 0.005);
  // It is a PEFT adapter: our upload parser takes it as one, N rows of d.
  auto config = core::ReadFileToString(tmp_.File("out/adapter_config.json"));
  auto weights = core::ReadFileToString(tmp_.File("out/adapter_model.safetensors"));
  ASSERT_TRUE(config.ok() && weights.ok());
  auto parsed = core::ParsePeftPrompt(*config, *weights, Limits());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, expected.size(0));
  EXPECT_EQ(parsed->dim, expected.size(1));
}

TEST_P(TrainCliTest, ResidualPromptTuningFollowsTheAdafactorTrajectoryAndFoldsToTheAdapter) {
  const std::vector<std::string> names = {"prompt",      "mlp.down.weight", "mlp.down.bias", "mlp.up.weight",
                                          "mlp.up.bias", "mlp.norm.weight", "mlp.norm.bias"};
  const std::string traj = cases_->Has("rpt.adafactor.loss") ? "rpt.adafactor" : "rpt.adamw";
  std::vector<core::TensorToWrite> init;
  for (const std::string& n : names) {
    const at::Tensor t = cases_->Float("rpt." + n).contiguous();
    core::TensorToWrite w{n, core::SafetensorsDtype::kF32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), ""};
    w.bytes.assign(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * sizeof(float));
    init.push_back(w);
  }
  auto bytes = core::SerializeSafetensors(init, {});
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(core::WriteFileDurably(tmp_.File("init.safetensors"), *bytes).ok());
  const auto lines = Train("residual", traj == "rpt.adafactor" ? "adafactor" : "adamw", tmp_.File("init.safetensors"),
                           tmp_.File("out"));
  ExpectLosses(lines, traj);
  for (const std::string& n : names) {
    const at::Tensor written = Read(tmp_.File("out/residual_prompt.safetensors"), n);
    ASSERT_TRUE(written.defined()) << n;
    EXPECT_LE((written - cases_->Float(traj + "." + n)[2]).abs().max().item<double>(), 0.005) << n;
  }
  // The adapter's prompt is the residual file folded, as the server folds it on upload.
  auto residual = core::ReadFileToString(tmp_.File("out/residual_prompt.safetensors"));
  ASSERT_TRUE(residual.ok());
  auto folded = core::ParseResidualPrompt(*residual, Limits());
  ASSERT_TRUE(folded.ok()) << folded.status().ToString();
  const at::Tensor adapter = Read(tmp_.File("out/adapter_model.safetensors"), "prompt_embeddings");
  const at::Tensor served = at::tensor(folded->values).reshape({folded->rows, folded->dim});
  EXPECT_LE((adapter.slice(0, 0, folded->rows) - served).abs().max().item<double>(), 1e-5);
}

TEST(TrainCliErrorsTest, BadCommandLinesAndDataAreRefusedWithAReason) {
  testing::ScopedTempDir tmp;
  ASSERT_TRUE(core::WriteFileDurably(tmp.File("bad.jsonl"), "{\"input_ids\": [3, 1]}\n").ok());
  const std::string bin = std::string(SOFTSERVE_BIN_DIR) + "/softserve-train";
  const std::string model = testing::ReferenceModelDir("t5-tiny-v1_0");
  int code = 0;
  std::string out = Shell(bin + " --model " + model + " --data " + tmp.File("bad.jsonl") + " --out " + tmp.File("o"), &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("bad.jsonl:1"), std::string::npos) << out;
  out = Shell(bin + " --model " + model + " --data x --out y --method lora", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--method"), std::string::npos) << out;
  out = Shell(bin + " --model " + model + " --data x --out y --dropout 1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--dropout"), std::string::npos) << out;
  out = Shell(bin + " --model " + model + " --data x --out y --dev-metric bleu", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--dev-metric"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(References, TrainCliTest, ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve
