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
  KvCache cache = (*model)->NewCache(KvCacheShape{16, 64, 256});
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

TEST(KvCacheTest, RowsOfDifferentLengthsDecodeInOneFixedAllocation) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_0"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  std::vector<EncoderRow> rows;
  for (int r = 0; r < 9; ++r) {
    std::vector<int64_t> ids(3 + 4 * r, 7 + r);
    rows.push_back(EncoderRow{at::Tensor(), ids});
  }
  EncoderBatch batch = (*model)->EmbedRows(rows);
  at::Tensor enc = (*model)->Encode(batch);
  KvCache cache = (*model)->NewCache(KvCacheShape{16, 64, 256});
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

// The cache is allocated once: appending rows, decoding, moving rows and clearing never move its
// memory, and the ready positions grow with the longest row (not to the full shape).
TEST(KvCacheTest, NeverReallocates) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_0"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  KvCache cache = (*model)->NewCache(KvCacheShape{6, 300, 200});
  const int64_t bytes = cache.CapacityBytes();
  const void* self_k = cache.self_k_storage(0).data_ptr();
  const void* cross = cache.cross_k(0).data_ptr();
  EncoderBatch batch = (*model)->EmbedRows({EncoderRow{at::Tensor(), std::vector<int64_t>(150, 9)},
                                            EncoderRow{at::Tensor(), {4, 1}}});
  cache.Append((*model)->ComputeCrossKv((*model)->Encode(batch)), batch.lengths, {0, 1, 1});
  for (int step = 0; step < 40; ++step) (*model)->DecodeStep({0, 0, 0}, &cache);
  cache.Append((*model)->ComputeCrossKv((*model)->Encode(batch)), batch.lengths, {1, 0, 0});
  cache.CopyHistory({0}, {2});
  cache.Permute({5, 4, 3, 2, 1, 0});
  cache.Compact({0, 4});
  EXPECT_EQ(cache.size(), 2);
  EXPECT_LT(cache.decoder_positions_ready(), 300);
  EXPECT_GE(cache.decoder_positions_ready(), 40);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0);
  EXPECT_EQ(cache.CapacityBytes(), bytes);
  EXPECT_EQ(cache.self_k_storage(0).data_ptr(), self_k);
  EXPECT_EQ(cache.cross_k(0).data_ptr(), cross);
}

// More rows than slots, or longer inputs or histories than the shape, are refused (the engine's
// admission never asks for them) and leave the rows as they were.
TEST(KvCacheTest, RefusesToExceedItsShape) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_0"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  KvCache cache = (*model)->NewCache(KvCacheShape{2, 3, 8});
  EncoderBatch fits = (*model)->EmbedRows({EncoderRow{at::Tensor(), {5, 6, 1}}});
  at::Tensor kv = (*model)->ComputeCrossKv((*model)->Encode(fits));
  EXPECT_THROW(cache.Append(kv, fits.lengths, {0, 0, 0}), c10::Error);
  EXPECT_EQ(cache.size(), 0);
  EncoderBatch too_long = (*model)->EmbedRows({EncoderRow{at::Tensor(), std::vector<int64_t>(9, 5)}});
  EXPECT_THROW(cache.Append((*model)->ComputeCrossKv((*model)->Encode(too_long)), too_long.lengths, {0}),
               c10::Error);
  EXPECT_EQ(cache.size(), 0);
  cache.Append(kv, fits.lengths, {0, 0});
  for (int step = 0; step < 3; ++step) (*model)->DecodeStep({0, 0}, &cache);
  EXPECT_THROW((*model)->DecodeStep({0, 0}, &cache), c10::Error);
  EXPECT_EQ(cache.self_lengths(), (std::vector<int64_t>{3, 3}));
}

// The budget buys whole rows: a slot is every decoder layer's keys and values for the decoder
// and encoder positions plus the encoder mask, here counted from the config by hand.
TEST(KvCacheTest, PlansWholeRowsWithinTheBudget) {
  auto model = T5Model::Load(softserve::testing::ReferenceModelDir("t5-tiny-v1_0"), ModelOptions{});
  ASSERT_TRUE(model.ok());
  const T5Config& c = (*model)->config();
  const int64_t slot = c.num_decoder_layers * 2 * c.num_heads * c.d_kv * 4 * (10 + 30) + 30 * 4;
  EXPECT_EQ(KvCacheSlotBytes(c, at::kFloat, 10, 30), slot);
  EXPECT_EQ(KvCacheSlotBytes(c, at::kBFloat16, 10, 30), slot / 2);
  auto shape = PlanKvCache(c, at::kFloat, 7 * slot - 1, 64, 10, 30);
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->slots, 6);
  EXPECT_EQ(PlanKvCache(c, at::kFloat, 100 * slot, 64, 10, 30)->slots, 64);
  KvCache cache = (*model)->NewCache(*shape);
  EXPECT_EQ(cache.CapacityBytes(), 6 * slot);
  auto none = PlanKvCache(c, at::kFloat, slot - 1, 64, 10, 30);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(none.status().message().find("needs " + std::to_string(slot) + " bytes"), std::string::npos)
      << none.status().message();
  EXPECT_EQ(PlanKvCache(c, at::kFloat, 0, 64, 10, 30).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace softserve::core
