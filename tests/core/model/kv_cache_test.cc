// KV-cache operations the engine relies on for beams and continuous batching, checked against
// the model's own teacher-forced pass over the same sequences (an independent code path):
// copying one row's history onto another makes it continue that row's sequence.
#include "core/model/kv_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/model/t5_model.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

using ::softserve::testing::AllCloseRef;

TEST(KvCacheTest, CopyHistoryMakesARowContinueAnotherRowsSequence) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_1"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  const std::vector<int64_t> input = {5, 9, 33, 7, 1};
  EncoderBatch batch = (*model)->EmbedRows({EncoderRow{at::Tensor(), input}});
  at::Tensor enc = (*model)->Encode(batch);
  KvCache cache = (*model)->NewCache();
  cache.Append((*model)->ComputeCrossKv(enc), batch.lengths, {0, 0});  // two beams
  // Beam 0 reads 0,11,12; beam 1 reads 0,21,22. Then beam 1 takes beam 0's history and reads 13.
  (*model)->DecodeStep({0, 0}, &cache);
  (*model)->DecodeStep({11, 21}, &cache);
  (*model)->DecodeStep({12, 22}, &cache);
  cache.CopyHistory({1}, {0});
  EXPECT_EQ(cache.self_lengths(), (std::vector<int64_t>{3, 3}));
  at::Tensor logits = (*model)->DecodeStep({13, 13}, &cache);
  at::Tensor dec = at::tensor(std::vector<int64_t>{0, 11, 12, 13}, at::kLong).unsqueeze(0);
  at::Tensor full = (*model)->DecodeTeacherForced(enc, batch.mask, dec, at::ones_like(dec, at::kBool));
  EXPECT_TRUE(AllCloseRef(logits[0], full[0][3], 1e-5, 1e-5));
  EXPECT_TRUE(AllCloseRef(logits[1], full[0][3], 1e-5, 1e-5));
}

TEST(KvCacheTest, GrowsPastInitialCapacities) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_0"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  std::vector<EncoderRow> rows;
  for (int r = 0; r < 9; ++r) {
    std::vector<int64_t> ids(3 + 4 * r, 7 + r);
    rows.push_back(EncoderRow{at::Tensor(), ids});
  }
  EncoderBatch batch = (*model)->EmbedRows(rows);
  at::Tensor enc = (*model)->Encode(batch);
  KvCache cache = (*model)->NewCache();
  std::vector<int64_t> src;
  for (int r = 0; r < 9; ++r) src.push_back(r);
  cache.Append((*model)->ComputeCrossKv(enc), batch.lengths, src);
  std::vector<int64_t> tokens(9, 0);
  at::Tensor last;
  for (int step = 0; step < 20; ++step) last = (*model)->DecodeStep(tokens, &cache);
  // Row 8 after 20 steps equals a teacher-forced pass over twenty zeros.
  at::Tensor dec = at::zeros({1, 20}, at::kLong);
  at::Tensor full = (*model)->DecodeTeacherForced(enc.narrow(0, 8, 1), batch.mask.narrow(0, 8, 1), dec,
                                                  at::ones_like(dec, at::kBool));
  EXPECT_TRUE(AllCloseRef(last[8], full[0][19], 1e-5, 1e-5));
  EXPECT_GT(cache.CapacityBytes(), 0);
}

}  // namespace
}  // namespace softserve::core
