// T5Model against the Hugging Face reference vectors (tests/data/t5-reference): encoder
// states, teacher-forced logits and soft-prompted runs, unbatched, padded and mixed-prompt.
#include "core/model/t5_model.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/testing/skip.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::softserve::testing::AllCloseRef;
using ::softserve::testing::ReferenceCases;
using ::softserve::testing::ReferenceModelDir;

class T5ModelReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ModelOptions options;  // float32 on the CPU, on the GEMM under test
    options.cpu_gemm = ::softserve::testing::TestCpuGemm();
    auto model = T5Model::Load(ReferenceModelDir(GetParam()), options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
    cases_ = std::make_unique<ReferenceCases>(GetParam());
  }

  // Unpadded encoder row i and decoder labels of row i, from cases.json.
  std::vector<int64_t> EncoderRowIds(int i) const {
    std::vector<int64_t> ids;
    for (const auto& v : cases_->json().Find("encoder_rows")->array()[i].array()) {
      ids.push_back(v.int_value());
    }
    return ids;
  }
  std::vector<int64_t> LabelIds(int i) const {
    std::vector<int64_t> ids;
    for (const auto& v : cases_->json().Find("decoder_labels")->array()[i].array()) {
      ids.push_back(v.int_value());
    }
    return ids;
  }
  static std::vector<int64_t> ShiftRight(const std::vector<int64_t>& labels) {
    std::vector<int64_t> in = {0};
    in.insert(in.end(), labels.begin(), labels.end() - 1);
    return in;
  }
  at::Tensor Prompt(const std::string& name) const { return cases_->Float(name); }

  // Teacher-forced logits for one unpadded (prompt, row) pair: [T, V].
  at::Tensor RowLogits(const at::Tensor& prompt, const std::vector<int64_t>& ids,
                       const std::vector<int64_t>& decoder_in) {
    EncoderBatch batch = model_->EmbedRows({EncoderRow{prompt, ids}});
    at::Tensor enc = model_->Encode(batch);
    at::Tensor dec = at::tensor(decoder_in, at::kLong).unsqueeze(0);
    at::Tensor dmask = at::ones_like(dec, at::kBool);
    return model_->DecodeTeacherForced(enc, batch.mask, dec, dmask)[0];
  }

  // Rows of different prompts joining the batch at different steps (continuous batching),
  // decoded incrementally with the KV cache; returns each pair's logits, float32 on the CPU.
  struct StaggeredPair { const char* prompt; int row; int join_step; };
  static const std::vector<StaggeredPair>& StaggeredPairs() {
    static const std::vector<StaggeredPair> kPairs = {{"a", 1, 0}, {"b", 0, 0}, {"a", 2, 3}, {"b", 1, 5}, {"a", 0, 6}};
    return kPairs;
  }
  std::vector<at::Tensor> DecodeStaggered(const T5Model& model) {
    const std::vector<StaggeredPair>& pairs = StaggeredPairs();
    KvCache cache = model.NewCache(KvCacheShape{16, 64, 256});
    std::vector<std::vector<int64_t>> inputs;
    std::vector<at::Tensor> got;
    std::vector<int> slot_of(pairs.size(), -1);
    std::vector<int> pair_of_slot;
    std::vector<int> step_of(pairs.size(), 0);
    for (const StaggeredPair& p : pairs) inputs.push_back(ShiftRight(LabelIds(p.row)));
    got.resize(pairs.size());
    for (int step = 0; step < 40; ++step) {
      // Join: encode this step's newcomers together, append to the cache.
      std::vector<EncoderRow> rows;
      std::vector<int> joining;
      for (size_t k = 0; k < pairs.size(); ++k) {
        if (pairs[k].join_step == step) {
          rows.push_back(EncoderRow{Prompt(std::string("prompt.") + pairs[k].prompt).to(model.tensor_options()),
                                    EncoderRowIds(pairs[k].row)});
          joining.push_back(static_cast<int>(k));
        }
      }
      if (!rows.empty()) {
        EncoderBatch batch = model.EmbedRows(rows);
        at::Tensor kv = model.ComputeCrossKv(model.Encode(batch));
        std::vector<int64_t> src;
        for (size_t j = 0; j < joining.size(); ++j) {
          src.push_back(static_cast<int64_t>(j));
          slot_of[joining[j]] = static_cast<int>(pair_of_slot.size());
          pair_of_slot.push_back(joining[j]);
        }
        cache.Append(kv, batch.lengths, src);
      }
      if (cache.size() == 0) continue;
      std::vector<int64_t> tokens;
      for (int slot = 0; slot < cache.size(); ++slot) {
        const int k = pair_of_slot[slot];
        tokens.push_back(inputs[k][step_of[k]]);
      }
      at::Tensor logits = model.DecodeStep(tokens, &cache);
      std::vector<int64_t> keep;
      std::vector<int> survivors;
      for (int slot = 0; slot < cache.size(); ++slot) {
        const int k = pair_of_slot[slot];
        at::Tensor row = logits[slot].unsqueeze(0).to(at::kCPU, at::kFloat);
        got[k] = got[k].defined() ? at::cat({got[k], row}) : row;
        if (++step_of[k] < static_cast<int>(inputs[k].size())) survivors.push_back(slot);
      }
      // Finished rows leave: swap-remove so that only tail rows move.
      if (survivors.size() != pair_of_slot.size()) {
        std::vector<int> order = pair_of_slot;
        std::vector<bool> alive(order.size(), false);
        for (int s : survivors) alive[s] = true;
        std::vector<int64_t> slots(order.size());
        for (size_t i = 0; i < slots.size(); ++i) slots[i] = static_cast<int64_t>(i);
        int64_t n = static_cast<int64_t>(slots.size());
        for (int64_t i = 0; i < n;) {
          if (alive[slots[i]]) { ++i; continue; }
          slots[i] = slots[n - 1];
          --n;
        }
        slots.resize(n);
        cache.Compact(slots);
        std::vector<int> next;
        for (int64_t s : slots) next.push_back(order[s]);
        pair_of_slot = next;
      }
    }
    return got;
  }

  std::unique_ptr<T5Model> model_;
  std::unique_ptr<ReferenceCases> cases_;
};

TEST_P(T5ModelReferenceTest, ConfigMatchesReadme) {
  const T5Config& c = model_->config();
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.num_heads * c.d_kv, 64);
  EXPECT_EQ(c.tie_word_embeddings, GetParam() == "t5-tiny-v1_0");
  EXPECT_EQ(c.gated, GetParam() == "t5-tiny-v1_1");
  EXPECT_EQ(c.num_decoder_layers, GetParam() == "t5-tiny-v1_1" ? 3 : 2);
}

TEST_P(T5ModelReferenceTest, EncoderPaddedBatchMatchesValidPositions) {
  at::Tensor ids = cases_->Int("encoder.input_ids");
  at::Tensor mask = cases_->Int("encoder.attention_mask");
  at::Tensor expected = cases_->Float("encoder.last_hidden_state");
  std::vector<EncoderRow> rows;
  for (int i = 0; i < 3; ++i) rows.push_back(EncoderRow{at::Tensor(), EncoderRowIds(i)});
  EncoderBatch batch = model_->EmbedRows(rows);
  ASSERT_TRUE(at::equal(batch.mask.to(at::kLong), mask));
  at::Tensor out = model_->Encode(batch);
  for (int i = 0; i < 3; ++i) {
    const int64_t len = batch.lengths[i];
    EXPECT_TRUE(AllCloseRef(out[i].narrow(0, 0, len), expected[i].narrow(0, 0, len))) << "row " << i;
  }
}

TEST_P(T5ModelReferenceTest, EncoderRowAloneMatchesReference) {
  at::Tensor expected = cases_->Float("encoder.last_hidden_state");
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> ids = EncoderRowIds(i);
    at::Tensor out = model_->Encode(model_->EmbedRows({EncoderRow{at::Tensor(), ids}}));
    const int64_t len = static_cast<int64_t>(ids.size());
    EXPECT_TRUE(AllCloseRef(out[0], expected[i].narrow(0, 0, len))) << "row " << i;
  }
}

TEST_P(T5ModelReferenceTest, TeacherForcedLogitsPaddedBatch) {
  std::vector<EncoderRow> rows;
  for (int i = 0; i < 3; ++i) rows.push_back(EncoderRow{at::Tensor(), EncoderRowIds(i)});
  EncoderBatch batch = model_->EmbedRows(rows);
  at::Tensor enc = model_->Encode(batch);
  at::Tensor dec_ids = cases_->Int("decoder.decoder_input_ids");
  at::Tensor dec_mask = cases_->Int("decoder.decoder_attention_mask").to(at::kBool);
  at::Tensor logits = model_->DecodeTeacherForced(enc, batch.mask, dec_ids, dec_mask);
  at::Tensor expected = cases_->Float("decoder.logits");
  for (int i = 0; i < 3; ++i) {
    const int64_t t = static_cast<int64_t>(LabelIds(i).size());
    EXPECT_TRUE(AllCloseRef(logits[i].narrow(0, 0, t), expected[i].narrow(0, 0, t))) << "row " << i;
  }
}

TEST_P(T5ModelReferenceTest, TeacherForcedLogitsRowAlone) {
  at::Tensor expected = cases_->Float("decoder.logits");
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> labels = LabelIds(i);
    at::Tensor logits = RowLogits(at::Tensor(), EncoderRowIds(i), ShiftRight(labels));
    const int64_t t = static_cast<int64_t>(labels.size());
    EXPECT_TRUE(AllCloseRef(logits, expected[i].narrow(0, 0, t))) << "row " << i;
  }
}

TEST_P(T5ModelReferenceTest, SoftPromptEmbeddingsEncoderAndLogits) {
  for (const char* p : {"a", "b"}) {
    for (int i = 0; i < 3; ++i) {
      const std::string key = std::string("prompt.") + p + ".row" + std::to_string(i);
      at::Tensor prompt = Prompt(std::string("prompt.") + p);
      std::vector<int64_t> ids = EncoderRowIds(i);
      EncoderBatch batch = model_->EmbedRows({EncoderRow{prompt, ids}});
      EXPECT_TRUE(AllCloseRef(batch.embeds, cases_->Float(key + ".inputs_embeds"))) << key;
      EXPECT_TRUE(AllCloseRef(model_->Encode(batch), cases_->Float(key + ".encoder_last_hidden_state")))
          << key;
      std::vector<int64_t> labels = LabelIds(i);
      EXPECT_TRUE(AllCloseRef(RowLogits(prompt, ids, ShiftRight(labels)).unsqueeze(0),
                              cases_->Float(key + ".logits")))
          << key;
    }
  }
}

// All six (prompt, row) pairs in one right-padded batch, in a scrambled order: every valid
// position must match its row-by-row reference (the mixed-task batch).
TEST_P(T5ModelReferenceTest, MixedPromptBatchMatchesRowByRow) {
  struct Pair { const char* prompt; int row; };
  const std::vector<Pair> pairs = {{"b", 2}, {"a", 0}, {"b", 1}, {"a", 2}, {"b", 0}, {"a", 1}};
  std::vector<EncoderRow> rows;
  int64_t t_max = 0;
  for (const Pair& p : pairs) {
    rows.push_back(EncoderRow{Prompt(std::string("prompt.") + p.prompt), EncoderRowIds(p.row)});
    t_max = std::max<int64_t>(t_max, LabelIds(p.row).size());
  }
  EncoderBatch batch = model_->EmbedRows(rows);
  at::Tensor enc = model_->Encode(batch);
  at::Tensor dec = at::zeros({6, t_max}, at::kLong);
  at::Tensor dmask = at::zeros({6, t_max}, at::kBool);
  for (size_t k = 0; k < pairs.size(); ++k) {
    std::vector<int64_t> in = ShiftRight(LabelIds(pairs[k].row));
    dec[k].narrow(0, 0, in.size()).copy_(at::tensor(in, at::kLong));
    dmask[k].narrow(0, 0, in.size()).fill_(true);
  }
  at::Tensor logits = model_->DecodeTeacherForced(enc, batch.mask, dec, dmask);
  for (size_t k = 0; k < pairs.size(); ++k) {
    const std::string key =
        std::string("prompt.") + pairs[k].prompt + ".row" + std::to_string(pairs[k].row);
    const int64_t len = batch.lengths[k];
    const int64_t t = static_cast<int64_t>(LabelIds(pairs[k].row).size());
    EXPECT_TRUE(AllCloseRef(enc[k].narrow(0, 0, len).unsqueeze(0),
                            cases_->Float(key + ".encoder_last_hidden_state")))
        << key;
    EXPECT_TRUE(AllCloseRef(logits[k].narrow(0, 0, t).unsqueeze(0), cases_->Float(key + ".logits")))
        << key;
  }
}

// Incremental decoding with the KV cache reproduces the teacher-forced reference logits, with
// rows of different prompts joining the batch at different steps (continuous batching).
TEST_P(T5ModelReferenceTest, IncrementalDecodingWithStaggeredJoinsMatchesReference) {
  const std::vector<at::Tensor> got = DecodeStaggered(*model_);
  for (size_t k = 0; k < got.size(); ++k) {
    const auto& p = StaggeredPairs()[k];
    const std::string key = std::string("prompt.") + p.prompt + ".row" + std::to_string(p.row);
    EXPECT_TRUE(AllCloseRef(got[k].unsqueeze(0), cases_->Float(key + ".logits"))) << key;
  }
}

// The same batched, mixed-prompt, staggered decoding in bfloat16 on the test device (CUDA under
// the `gpu` label): close to the float32 reference within the bf16 tolerance used above.
TEST_P(T5ModelReferenceTest, BFloat16BatchedMixedDecodingIsCloseToTheReference) {
  if (const std::string why = testing::TestDeviceUnavailable(); !why.empty()) SOFTSERVE_SKIP() << why;
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions(DType::kBFloat16));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::vector<at::Tensor> got = DecodeStaggered(**model);
  for (size_t k = 0; k < got.size(); ++k) {
    const auto& p = StaggeredPairs()[k];
    const std::string key = std::string("prompt.") + p.prompt + ".row" + std::to_string(p.row);
    at::Tensor expected = cases_->Float(key + ".logits")[0];
    ASSERT_EQ(got[k].sizes(), expected.sizes()) << key;
    const double max_ref = expected.abs().max().item<double>();
    EXPECT_LT((got[k] - expected).abs().max().item<double>(), 0.05 * max_ref + 0.5) << key;
  }
}

// Recompute (preemption): rows re-admitted with the decoder tokens they had already fed get
// their self-attention state rebuilt in one teacher-forced pass; the next incremental steps
// must give HF's teacher-forced logits at the following positions.
TEST_P(T5ModelReferenceTest, RecomputedRowsContinueLikeTheReference) {
  struct Pair { const char* prompt; int row; size_t fed; };
  const std::vector<Pair> pairs = {{"a", 1, 5}, {"b", 0, 2}, {"a", 2, 1}};
  std::vector<EncoderRow> rows;
  std::vector<std::vector<int64_t>> inputs, histories;
  for (const Pair& p : pairs) {
    rows.push_back(EncoderRow{Prompt(std::string("prompt.") + p.prompt), EncoderRowIds(p.row)});
    inputs.push_back(ShiftRight(LabelIds(p.row)));
    histories.emplace_back(inputs.back().begin(), inputs.back().begin() + p.fed);
  }
  KvCache cache = model_->NewCache(KvCacheShape{16, 64, 256});
  // A fresh row first, so that the recomputed rows do not start at slot 0.
  EncoderBatch first = model_->EmbedRows({EncoderRow{Prompt("prompt.b"), EncoderRowIds(1)}});
  cache.Append(model_->ComputeCrossKv(model_->Encode(first)), first.lengths, {0});
  EncoderBatch batch = model_->EmbedRows(rows);
  cache.Append(model_->ComputeCrossKv(model_->Encode(batch)), batch.lengths, {0, 1, 2});
  model_->RecomputeHistory(1, histories, &cache);
  EXPECT_EQ(cache.self_lengths(), (std::vector<int64_t>{0, 5, 2, 1}));
  const std::vector<int64_t> fresh_in = ShiftRight(LabelIds(1));
  for (size_t step = 0; step < 3; ++step) {
    std::vector<int64_t> tokens = {fresh_in[step]};
    for (size_t k = 0; k < pairs.size(); ++k) tokens.push_back(inputs[k][pairs[k].fed + step]);
    at::Tensor logits = model_->DecodeStep(tokens, &cache);
    EXPECT_TRUE(AllCloseRef(logits[0].view({1, 1, -1}), cases_->Float("prompt.b.row1.logits").narrow(1, step, 1)));
    for (size_t k = 0; k < pairs.size(); ++k) {
      const std::string key = std::string("prompt.") + pairs[k].prompt + ".row" + std::to_string(pairs[k].row);
      at::Tensor expected = cases_->Float(key + ".logits").narrow(1, static_cast<int64_t>(pairs[k].fed + step), 1);
      EXPECT_TRUE(AllCloseRef(logits[static_cast<int64_t>(k) + 1].view({1, 1, -1}), expected)) << key << " step " << step;
    }
  }
}

// bfloat16 runs the same code paths; with 8-bit mantissas it can only be close to the float32
// reference, so this checks a loose tolerance and that the logits still rank like HF's.
// On the test device: CPU here, CUDA under the CTest label `gpu` (tests/testing/reference_data.h).
TEST_P(T5ModelReferenceTest, BFloat16IsCloseToTheFloat32Reference) {
  if (const std::string why = testing::TestDeviceUnavailable(); !why.empty()) SOFTSERVE_SKIP() << why;
  auto model = T5Model::Load(ReferenceModelDir(GetParam()), testing::TestModelOptions(DType::kBFloat16));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->weights().embedding.scalar_type(), at::kBFloat16);
  const at::TensorOptions on_device = (*model)->tensor_options();
  at::Tensor prompt = Prompt("prompt.a").to(on_device);
  std::vector<int64_t> ids = EncoderRowIds(0);
  EncoderBatch batch = (*model)->EmbedRows({EncoderRow{prompt, ids}});
  at::Tensor enc = (*model)->Encode(batch);
  EXPECT_EQ(enc.scalar_type(), at::kBFloat16);
  at::Tensor expected_enc = cases_->Float("prompt.a.row0.encoder_last_hidden_state");
  EXPECT_TRUE(AllCloseRef(enc, expected_enc, 0.1, 0.1));
  std::vector<int64_t> in = ShiftRight(LabelIds(0));
  at::Tensor dec = at::tensor(in, at::kLong).unsqueeze(0).to(on_device.device());
  at::Tensor logits = (*model)->DecodeTeacherForced(enc, batch.mask, dec, at::ones_like(dec, at::kBool))[0].to(at::kCPU, at::kFloat);
  at::Tensor expected = cases_->Float("prompt.a.row0.logits")[0];
  const double max_ref = expected.abs().max().item<double>();
  EXPECT_LT((logits - expected).abs().max().item<double>(), 0.05 * max_ref + 0.5);
  // Incremental decoding runs in bf16 too (generic attention path).
  KvCache cache = (*model)->NewCache(KvCacheShape{16, 64, 256});
  cache.Append((*model)->ComputeCrossKv(enc), batch.lengths, {0});
  at::Tensor step = (*model)->DecodeStep({0}, &cache).to(at::kCPU, at::kFloat);
  EXPECT_LT((step[0] - expected[0]).abs().max().item<double>(), 0.05 * max_ref + 0.5);
}

// float16 is refused with a message that names the alternative: T5 v1.1/FLAN overflow it
// without Hugging Face's clamp, which this model does not implement.
TEST(T5ModelLoadTest, Float16IsRefusedWithTheReason) {
  ModelOptions options;
  options.dtype = DType::kFloat16;
  auto model = T5Model::Load(::softserve::testing::ReferenceModelDir("t5-tiny-v1_1"), options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("bfloat16"), std::string::npos) << model.status().message();
}

INSTANTIATE_TEST_SUITE_P(References, T5ModelReferenceTest,
                         ::testing::ValuesIn(::softserve::testing::ReferenceModelNames()));

}  // namespace
}  // namespace softserve::core
