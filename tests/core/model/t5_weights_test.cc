// Checkpoint loading in every layout users download from the hub, built from the reference
// checkpoints' own bytes (so expected outputs stay Hugging Face's): sharded with an index,
// without the embedding aliases (newer HF), stored in F16/BF16; and every broken layout is a
// precise error naming the tensor or file.
#include "core/model/t5_weights.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

#include <cstdlib>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "core/model/random_checkpoint.h"
#include "core/model/safetensors.h"
#include "core/model/t5_model.h"
#include "core/model/tensor_convert.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::softserve::testing::AllCloseRef;
using ::softserve::testing::ReferenceCases;
using ::softserve::testing::ReferenceModelDir;

class T5WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = SafetensorsFile::Open(ReferenceModelDir("t5-tiny-v1_0") + "/model.safetensors");
    ASSERT_TRUE(f.ok());
    for (const TensorView& v : (*f)->contents().tensors()) {
      tensors_.push_back({v.name, v.dtype, v.shape,
                          std::string(reinterpret_cast<const char*>(v.data), v.nbytes)});
    }
    auto cfg = ReadFileToString(ReferenceModelDir("t5-tiny-v1_0") + "/config.json");
    ASSERT_TRUE(cfg.ok());
    config_json_ = *cfg;
  }

  std::string Write(const std::string& name, const std::vector<TensorToWrite>& tensors) {
    const std::string d = JoinPath(dir_, name);
    EXPECT_TRUE(MakeDirectories(d).ok());
    EXPECT_TRUE(WriteFileDurably(JoinPath(d, "config.json"), config_json_).ok());
    auto bytes = SerializeSafetensors(tensors, {{"format", "pt"}});
    EXPECT_TRUE(bytes.ok());
    EXPECT_TRUE(WriteFileDurably(JoinPath(d, "model.safetensors"), *bytes).ok());
    return d;
  }

  std::vector<TensorToWrite> Without(std::initializer_list<std::string> names) const {
    std::vector<TensorToWrite> out;
    for (const auto& t : tensors_) {
      bool drop = false;
      for (const auto& n : names) drop = drop || t.name == n;
      if (!drop) out.push_back(t);
    }
    return out;
  }

  // The encoder states of reference row 0 must match HF's.
  void ExpectEncoderMatchesReference(const std::string& dir, double atol = 1e-4, double rtol = 1e-4) {
    auto model = T5Model::Load(dir, ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ReferenceCases cases("t5-tiny-v1_0");
    std::vector<int64_t> ids = cases.Ids("generate.row0.input_ids");
    at::Tensor out = (*model)->Encode((*model)->EmbedRows({EncoderRow{at::Tensor(), ids}}));
    at::Tensor expected = cases.Float("encoder.last_hidden_state")[0].narrow(0, 0, ids.size());
    EXPECT_TRUE(AllCloseRef(out[0], expected, atol, rtol));
  }

  testing::ScopedTempDir temp_{"softserve_weights_test"};
  const std::string dir_ = temp_.path();
  std::string config_json_;
  std::vector<TensorToWrite> tensors_;
};

TEST_F(T5WeightsTest, ShardedCheckpointWithIndex) {
  const std::string d = JoinPath(dir_, "sharded");
  ASSERT_TRUE(MakeDirectories(d).ok());
  ASSERT_TRUE(WriteFileDurably(JoinPath(d, "config.json"), config_json_).ok());
  JsonValue map = JsonValue::MakeObject();
  for (int s = 0; s < 3; ++s) {
    std::vector<TensorToWrite> group;
    for (size_t i = s; i < tensors_.size(); i += 3) group.push_back(tensors_[i]);
    const std::string name = "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
    for (const auto& t : group) map.Add(t.name, JsonValue::String(name));
    auto bytes = SerializeSafetensors(group, {});
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE(WriteFileDurably(JoinPath(d, name), *bytes).ok());
  }
  JsonValue index = JsonValue::MakeObject();
  index.Add("metadata", JsonValue::MakeObject());
  index.Add("weight_map", std::move(map));
  ASSERT_TRUE(WriteFileDurably(JoinPath(d, "model.safetensors.index.json"), index.Serialize()).ok());
  ExpectEncoderMatchesReference(d);
}

TEST_F(T5WeightsTest, NewerLayoutWithoutAliasesAndOnlyAnAlias) {
  ExpectEncoderMatchesReference(Write("no_alias", Without({"encoder.embed_tokens.weight",
                                                           "decoder.embed_tokens.weight",
                                                           "lm_head.weight"})));
  ExpectEncoderMatchesReference(Write("only_alias", Without({"shared.weight", "decoder.embed_tokens.weight",
                                                             "lm_head.weight"})));
}

TEST_F(T5WeightsTest, HalfPrecisionStorageConvertsToServingDtype) {
  for (auto [name, dtype] : {std::pair<const char*, at::ScalarType>{"f16", at::kHalf},
                             std::pair<const char*, at::ScalarType>{"bf16", at::kBFloat16}}) {
    std::vector<TensorToWrite> converted;
    for (const auto& t : tensors_) {
      at::Tensor f = at::from_blob(const_cast<char*>(t.bytes.data()), t.shape, at::kFloat).to(dtype);
      TensorToWrite w{t.name, dtype == at::kHalf ? SafetensorsDtype::kF16 : SafetensorsDtype::kBF16,
                      t.shape, std::string(static_cast<const char*>(f.data_ptr()), f.numel() * 2)};
      converted.push_back(std::move(w));
    }
    // Rounded weights: loose tolerance, but clearly the same model.
    ExpectEncoderMatchesReference(Write(name, converted), 0.1, 0.05);
  }
}

TEST_F(T5WeightsTest, BrokenCheckpointsNameTheProblem) {
  auto config = LoadT5Config(ReferenceModelDir("t5-tiny-v1_0") + "/config.json");
  ASSERT_TRUE(config.ok());
  auto expect = [&](const std::string& d, StatusCode code, const std::string& needle) {
    auto w = LoadT5Weights(d, *config, ModelOptions{});
    ASSERT_FALSE(w.ok()) << d;
    EXPECT_EQ(w.status().code(), code) << w.status().ToString();
    EXPECT_NE(w.status().message().find(needle), std::string::npos) << w.status().ToString();
  };
  expect(Write("missing", Without({"decoder.block.1.layer.2.DenseReluDense.wo.weight"})),
         StatusCode::kInvalidArgument, "decoder.block.1.layer.2.DenseReluDense.wo.weight");
  auto reshaped = tensors_;
  for (auto& t : reshaped) {
    if (t.name == "encoder.block.0.layer.0.SelfAttention.q.weight") t.shape = {32, 128};
  }
  expect(Write("misshaped", reshaped), StatusCode::kInvalidArgument, "encoder.block.0.layer.0.SelfAttention.q.weight");
  // Truncated file.
  const std::string trunc = Write("truncated", tensors_);
  auto bytes = ReadFileToString(JoinPath(trunc, "model.safetensors"));
  ASSERT_TRUE(WriteFileDurably(JoinPath(trunc, "model.safetensors"), bytes->substr(0, bytes->size() / 2)).ok());
  expect(trunc, StatusCode::kDataLoss, "model.safetensors");
  // Only a torch pickle.
  const std::string bin = JoinPath(dir_, "bin_only");
  ASSERT_TRUE(MakeDirectories(bin).ok());
  ASSERT_TRUE(WriteFileDurably(JoinPath(bin, "pytorch_model.bin"), "pickle").ok());
  expect(bin, StatusCode::kNotFound, "pytorch_model.bin");
  // An index that points outside the directory, or at a shard without the tensor.
  const std::string evil = JoinPath(dir_, "evil_index");
  ASSERT_TRUE(MakeDirectories(evil).ok());
  ASSERT_TRUE(WriteFileDurably(JoinPath(evil, "model.safetensors.index.json"),
                               R"({"weight_map": {"shared.weight": "../../etc/passwd"}})").ok());
  expect(evil, StatusCode::kInvalidArgument, "plain file name");
  const std::string liar = Write("liar_index", tensors_);
  ASSERT_TRUE(std::rename(JoinPath(liar, "model.safetensors").c_str(), JoinPath(liar, "a.safetensors").c_str()) == 0);
  ASSERT_TRUE(WriteFileDurably(JoinPath(liar, "model.safetensors.index.json"),
                               R"({"weight_map": {"shared.weight": "a.safetensors", "nope.weight": "a.safetensors"}})").ok());
  expect(liar, StatusCode::kDataLoss, "nope.weight");
}

TEST_F(T5WeightsTest, RandomCheckpointWriterProducesLoadableShardedLayout) {
  auto config = LoadT5Config(ReferenceModelDir("t5-tiny-v1_1") + "/config.json");
  ASSERT_TRUE(config.ok());
  const std::string d = JoinPath(dir_, "random");
  RandomCheckpointOptions options;
  options.shards = 2;
  options.seed = 7;
  ASSERT_TRUE(WriteRandomT5Checkpoint(*config, d, options).ok());
  EXPECT_TRUE(PathExists(JoinPath(d, "model.safetensors.index.json")));
  EXPECT_TRUE(IsRandomCheckpoint(d));
  EXPECT_FALSE(IsRandomCheckpoint(ReferenceModelDir("t5-tiny-v1_1")));
  auto model = T5Model::Load(d, ModelOptions{});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE((*model)->config().tie_word_embeddings);
  // HF's init: layer norms are ones, embeddings N(0, 1).
  EXPECT_TRUE(at::equal((*model)->weights().encoder_final_norm, at::ones({config->d_model})));
  const double std_dev = (*model)->weights().embedding.std().item<double>();
  EXPECT_NEAR(std_dev, 1.0, 0.05);
}

}  // namespace
}  // namespace softserve::core
