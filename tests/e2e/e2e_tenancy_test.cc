// Tenancy, authentication, quotas and bad input against the running server. Every rejection
// must carry the right code and a message a human can act on, and leave stored state as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <thread>

#include <ATen/ATen.h>

#include "core/common/sha256.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

using client::PromptUpload;
namespace v1 = ::softserve::v1;

constexpr int64_t kDim = 64;  // d_model of the reference models

PromptUpload Raw(const std::string& name, int64_t rows, float value = 0.5f) {
  PromptUpload u;
  u.name = name;
  u.bytes = testing::RawPromptBytes(std::vector<float>(rows * kDim, value), rows, kDim);
  return u;
}

v1::GenerateRequest Gen(const std::string& prompt, std::vector<int64_t> ids = {5, 6, 7, 1}, int max_new = 4) {
  v1::GenerateRequest r;
  r.add_inputs()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  if (!prompt.empty()) r.mutable_prompt()->set_name(prompt);
  r.mutable_parameters()->set_max_new_tokens(max_new);
  return r;
}

// An UploadPrompt stream as alice, written message by message: for the streams the client
// library never produces (truncated, abandoned, corrupted).
struct RawUploadStream {
  explicit RawUploadStream(const std::string& target)
      : stub(v1::PromptService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {
    context.AddMetadata("authorization", "Bearer alice-key");
    writer = stub->UploadPrompt(&context, &response);
  }
  grpc::ClientContext context;
  std::unique_ptr<v1::PromptService::Stub> stub;
  v1::Prompt response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadPromptRequest>> writer;
};

v1::UploadPromptRequest RawHeader(const std::string& name) {
  v1::UploadPromptRequest header;
  header.mutable_header()->set_name(name);
  header.mutable_header()->set_format(v1::PROMPT_FORMAT_RAW);
  return header;
}

v1::UploadPromptRequest Chunk(const std::string& bytes) {
  v1::UploadPromptRequest chunk;
  chunk.set_chunk(bytes);
  return chunk;
}

void ExpectCode(const grpc::Status& s, grpc::StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_NE(s.error_message().find(needle), std::string::npos) << "message: " << s.error_message();
}

class E2eTenancyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::ServerOptions o;
    o.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
    o.tenants = {{"alice", "alice-key"},
                 {"bob", "bob-key"},
                 {"root", "root-key", true},
                 {"small", "small-key", false, 2, 64 * kDim * 4, 1}};
    o.extra_args = {"--max-input-tokens", "32", "--max-inputs-per-request", "4", "--max-upload-bytes", "200000",
                    "--max-score-targets", "3"};
    server_ = new testing::ServerProcess(o);
  }
  static void TearDownTestSuite() { delete server_; }
  static testing::ServerProcess* server_;
};
testing::ServerProcess* E2eTenancyTest::server_ = nullptr;

TEST_F(E2eTenancyTest, MissingOrWrongKeysAreUnauthenticated) {
  ExpectCode(server_->ClientWithKey("")->GetModelInfo().status, grpc::StatusCode::UNAUTHENTICATED, "authorization");
  ExpectCode(server_->ClientWithKey("nope")->Generate(Gen("")).status, grpc::StatusCode::UNAUTHENTICATED, "unknown API key");
  ExpectCode(server_->ClientWithKey("nope")->UploadPrompt(Raw("x", 2)).status, grpc::StatusCode::UNAUTHENTICATED, "API key");
  // Health needs no key.
  EXPECT_TRUE(server_->ClientWithKey("")->Health().ok());
  EXPECT_EQ(server_->ClientFor("alice")->GetModelInfo().value.tenant(), "alice");
}

TEST_F(E2eTenancyTest, TenantsCannotSeeUseOverwriteOrDeleteEachOthersPrompts) {
  auto alice = server_->ClientFor("alice");
  auto bob = server_->ClientFor("bob");
  auto stored = alice->UploadPrompt(Raw("secret", 3, 0.25f));
  ASSERT_TRUE(stored.ok()) << stored.status.error_message();
  v1::GetPromptRequest get;
  get.set_name("secret");
  // Bob: not found, exactly as for a name nobody has.
  ExpectCode(bob->GetPrompt(get).status, grpc::StatusCode::NOT_FOUND, "no prompt named 'secret'");
  ExpectCode(bob->Generate(Gen("secret")).status, grpc::StatusCode::NOT_FOUND, "no prompt named 'secret'");
  v1::DeletePromptRequest del;
  del.set_name("secret");
  ExpectCode(bob->DeletePrompt(del).status, grpc::StatusCode::NOT_FOUND, "secret");
  EXPECT_TRUE(bob->ListPrompts(v1::ListPromptsRequest()).value.prompts().empty());
  // Bob uploading the same name creates his own prompt; alice's is untouched.
  ASSERT_TRUE(bob->UploadPrompt(Raw("secret", 2, 0.75f)).ok());
  get.set_include_values(true);
  auto mine = alice->GetPrompt(get);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine.value.rows(), 3);
  EXPECT_EQ(mine.value.version(), 1);
  EXPECT_FLOAT_EQ(mine.value.values(0), 0.25f);
  // Naming another tenant needs an admin key.
  get.set_tenant("alice");
  ExpectCode(bob->GetPrompt(get).status, grpc::StatusCode::PERMISSION_DENIED, "admin");
  PromptUpload into_alice = Raw("planted", 2);
  into_alice.tenant = "alice";
  ExpectCode(bob->UploadPrompt(into_alice).status, grpc::StatusCode::PERMISSION_DENIED, "admin");
  // The admin manages every tenant.
  auto root = server_->ClientFor("root");
  EXPECT_TRUE(root->GetPrompt(get).ok());
  auto planted = root->UploadPrompt(into_alice);
  ASSERT_TRUE(planted.ok()) << planted.status.error_message();
  EXPECT_EQ(planted.value.tenant(), "alice");
  v1::ListPromptsRequest list;
  list.set_tenant("alice");
  EXPECT_EQ(root->ListPrompts(list).value.prompts_size(), 2);
  v1::DeletePromptRequest root_del;
  root_del.set_name("planted");
  root_del.set_tenant("alice");
  EXPECT_EQ(root->DeletePrompt(root_del).value.deleted_versions(), 1);
  get.set_tenant("nobody");
  ExpectCode(root->GetPrompt(get).status, grpc::StatusCode::NOT_FOUND, "no tenant");
}

TEST_F(E2eTenancyTest, QuotasSayWhichLimit) {
  auto small = server_->ClientFor("small");
  ASSERT_TRUE(small->UploadPrompt(Raw("a", 10)).ok());
  // Bytes: 64 rows * 64 * 4 allowed in total; 10 rows used, 60 more is too much.
  ExpectCode(small->UploadPrompt(Raw("b", 60)).status, grpc::StatusCode::RESOURCE_EXHAUSTED, "bytes");
  ASSERT_TRUE(small->UploadPrompt(Raw("b", 10)).ok());
  ExpectCode(small->UploadPrompt(Raw("c", 1)).status, grpc::StatusCode::RESOURCE_EXHAUSTED, "quota is 2");
  // In flight: the limit is 1; a long streaming generation holds it.
  grpc::ClientContext context;
  std::atomic<bool> started{false}, ended{false};
  std::thread holder([&] {
    v1::GenerateRequest r = Gen("a", {5, 6, 7, 1}, 500);
    r.mutable_parameters()->set_min_new_tokens(500);
    small->GenerateStream(r, [&](const v1::GenerateStreamResponse&) { started = true; }, &context);
    ended = true;
  });
  while (!started && !ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!started) {
    holder.join();
    FAIL() << "the holding stream ended before its first token";
  }
  ExpectCode(small->Generate(Gen("a")).status, grpc::StatusCode::RESOURCE_EXHAUSTED, "max_inflight");
  context.TryCancel();
  holder.join();
  // The slot is free again once the cancelled request is gone.
  for (int i = 0; i < 200; ++i) {
    auto r = small->Generate(Gen("a"));
    if (r.ok()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "in-flight slot never released";
}

TEST_F(E2eTenancyTest, BadInputGetsPreciseStatusesAndChangesNothing) {
  auto alice = server_->ClientFor("alice");
  ASSERT_TRUE(alice->UploadPrompt(Raw("keep", 4)).ok());
  auto before = alice->ListPrompts(v1::ListPromptsRequest());
  ASSERT_TRUE(before.ok());
  using C = grpc::StatusCode;

  // Inference.
  v1::GenerateRequest empty;
  ExpectCode(alice->Generate(empty).status, C::INVALID_ARGUMENT, "no inputs");
  v1::GenerateRequest empty_ids = Gen("");
  empty_ids.mutable_inputs(0)->mutable_ids()->clear_ids();
  ExpectCode(alice->Generate(empty_ids).status, C::INVALID_ARGUMENT, "input is empty");
  ExpectCode(alice->Generate(Gen("", std::vector<int64_t>(33, 5))).status, C::INVALID_ARGUMENT, "limit of 32");
  ExpectCode(alice->Generate(Gen("", {5, 999})).status, C::INVALID_ARGUMENT, "outside the vocabulary");
  ExpectCode(alice->Generate(Gen("missing")).status, C::NOT_FOUND, "missing");
  v1::GenerateRequest text = Gen("");
  text.mutable_inputs(0)->set_text("hello");
  ExpectCode(alice->Generate(text).status, C::FAILED_PRECONDITION, "no tokenizer");
  v1::GenerateRequest too_many = Gen("");
  for (int i = 0; i < 4; ++i) *too_many.add_inputs() = too_many.inputs(0);
  ExpectCode(alice->Generate(too_many).status, C::INVALID_ARGUMENT, "limit is 4");
  v1::GenerateRequest hot = Gen("");
  hot.mutable_parameters()->set_mode(v1::DECODING_MODE_SAMPLE);
  hot.mutable_parameters()->set_temperature(-1);
  ExpectCode(alice->Generate(hot).status, C::INVALID_ARGUMENT, "temperature");
  v1::GenerateRequest wide = Gen("");
  wide.mutable_parameters()->set_mode(v1::DECODING_MODE_BEAM);
  wide.mutable_parameters()->set_num_beams(1000);
  ExpectCode(alice->Generate(wide).status, C::INVALID_ARGUMENT, "num_beams");
  v1::GenerateRequest nucleus = Gen("");
  nucleus.mutable_parameters()->set_mode(v1::DECODING_MODE_SAMPLE);
  nucleus.mutable_parameters()->set_top_p(2);
  ExpectCode(alice->Generate(nucleus).status, C::INVALID_ARGUMENT, "top_p");
  v1::GenerateRequest long_out = Gen("");
  long_out.mutable_parameters()->set_max_new_tokens(100000);
  ExpectCode(alice->Generate(long_out).status, C::INVALID_ARGUMENT, "max_new_tokens");
  v1::ScoreRequest score;
  score.mutable_input()->mutable_ids()->add_ids(5);
  ExpectCode(alice->Score(score).status, C::INVALID_ARGUMENT, "no candidate targets");
  for (int i = 0; i < 4; ++i) score.add_targets()->mutable_ids()->add_ids(5);
  ExpectCode(alice->Score(score).status, C::INVALID_ARGUMENT, "limit of 3");
  v1::ExplainRequest explain;
  ExpectCode(alice->Explain(explain).status, C::INVALID_ARGUMENT, "prompt name is required");

  // Uploads.
  ExpectCode(alice->UploadPrompt(Raw("narrow", 2)).status, C::OK, "");  // sanity: valid upload works
  PromptUpload narrow;
  narrow.name = "wrong-width";
  narrow.bytes = testing::RawPromptBytes(std::vector<float>(2 * 32, 0.f), 2, 32);
  ExpectCode(alice->UploadPrompt(narrow).status, C::INVALID_ARGUMENT, "d_model is 64");
  std::vector<float> values(2 * kDim, 0.f);
  values[70] = NAN;
  PromptUpload nan;
  nan.name = "nan";
  nan.bytes = testing::RawPromptBytes(values, 2, kDim);
  ExpectCode(alice->UploadPrompt(nan).status, C::INVALID_ARGUMENT, "row 1, column 6");
  PromptUpload garbage = Raw("garbage", 2);
  garbage.bytes = "this is not safetensors";
  ExpectCode(alice->UploadPrompt(garbage).status, C::INVALID_ARGUMENT, "safetensors");
  PromptUpload bad_format = Raw("fmt", 2);
  bad_format.format = v1::PROMPT_FORMAT_UNSPECIFIED;
  ExpectCode(alice->UploadPrompt(bad_format).status, C::INVALID_ARGUMENT, "format must be");
  PromptUpload bad_name = Raw("../../etc/passwd", 2);
  ExpectCode(alice->UploadPrompt(bad_name).status, C::INVALID_ARGUMENT, "prompt name");
  PromptUpload peft_no_config = Raw("peft", 2);
  peft_no_config.format = v1::PROMPT_FORMAT_PEFT;
  ExpectCode(alice->UploadPrompt(peft_no_config).status, C::INVALID_ARGUMENT, "adapter_config.json");
  PromptUpload huge = Raw("huge", 1000);  // 256 KB, over the 200 KB upload limit
  ExpectCode(alice->UploadPrompt(huge).status, C::RESOURCE_EXHAUSTED, "max_upload_bytes");

  // A stream that ends early: the header promises more bytes than arrive.
  {
    RawUploadStream up(server_->target());
    const std::string bytes = testing::RawPromptBytes(std::vector<float>(4 * kDim, 1.f), 4, kDim);
    v1::UploadPromptRequest header = RawHeader("truncated");
    header.mutable_header()->set_total_bytes(static_cast<int64_t>(bytes.size()));
    ASSERT_TRUE(up.writer->Write(header));
    ASSERT_TRUE(up.writer->Write(Chunk(bytes.substr(0, bytes.size() / 2))));
    up.writer->WritesDone();
    ExpectCode(up.writer->Finish(), C::INVALID_ARGUMENT, "truncated");
  }
  // A client that disconnects mid-upload.
  {
    RawUploadStream up(server_->target());
    ASSERT_TRUE(up.writer->Write(RawHeader("abandoned")));
    up.context.TryCancel();
    EXPECT_EQ(up.writer->Finish().error_code(), C::CANCELLED);
  }
  // A corrupted stream: the digest in the header does not match.
  PromptUpload digest = Raw("digest", 2);
  {
    RawUploadStream up(server_->target());
    v1::UploadPromptRequest header = RawHeader("digest");
    header.mutable_header()->set_sha256(core::Sha256Hex("something else"));
    ASSERT_TRUE(up.writer->Write(header));
    ASSERT_TRUE(up.writer->Write(Chunk(digest.bytes)));
    up.writer->WritesDone();
    ExpectCode(up.writer->Finish(), C::INVALID_ARGUMENT, "SHA-256");
  }

  // Nothing that failed was stored: the only new name is the one valid upload.
  auto after = alice->ListPrompts(v1::ListPromptsRequest());
  ASSERT_TRUE(after.ok());
  std::set<std::string> expected, got;
  for (const auto& p : before.value.prompts()) expected.insert(p.name());
  expected.insert("narrow");
  for (const auto& p : after.value.prompts()) got.insert(p.name());
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(alice->Generate(Gen("keep")).ok());
  EXPECT_EQ(server_->ClientWithKey("")->Health().value.status(), ::grpc::health::v1::HealthCheckResponse::SERVING);
}

// Bytes that are not the request message get INVALID_ARGUMENT naming the message and, where
// protobuf says, the field — not gRPC's bare UNIMPLEMENTED. Authentication still comes first.
TEST_F(E2eTenancyTest, MalformedRequestsGetInvalidArgumentNamingTheProblem) {
  using C = grpc::StatusCode;
  const std::string target = server_->target();
  ExpectCode(testing::RawUnary(target, "/softserve.v1.InferenceService/Generate", "\xff\xff\xff\xff", "alice-key"),
             C::INVALID_ARGUMENT, "not a valid softserve.v1.GenerateRequest");
  // inputs[0].text = "\xff": a proto3 string that is not UTF-8.
  const grpc::Status utf8 =
      testing::RawUnary(target, "/softserve.v1.InferenceService/Generate", std::string("\x0a\x03\x0a\x01\xff", 5), "alice-key");
  ExpectCode(utf8, C::INVALID_ARGUMENT, "softserve.v1.Input.text");
  EXPECT_NE(utf8.error_message().find("UTF-8"), std::string::npos) << utf8.error_message();
  ExpectCode(testing::RawUnary(target, "/softserve.v1.ModelService/GetModelInfo", "\x08", "alice-key"), C::INVALID_ARGUMENT,
             "softserve.v1.GetModelInfoRequest");
  ExpectCode(testing::RawUnary(target, "/softserve.v1.PromptService/GetPrompt", "\x12\x7f", "alice-key"), C::INVALID_ARGUMENT,
             "softserve.v1.GetPromptRequest");
  ExpectCode(testing::RawUnary(target, "/softserve.v1.InferenceService/Generate", "\xff", "nope"), C::UNAUTHENTICATED,
             "API key");
  ExpectCode(testing::RawClientStream(target, "/softserve.v1.PromptService/UploadPrompt", {"\xff\xff"}, "alice-key"),
             C::INVALID_ARGUMENT, "softserve.v1.UploadPromptRequest");

  auto alice = server_->ClientFor("alice");
  v1::GenerateRequest mode = Gen("");
  mode.mutable_parameters()->set_mode(static_cast<v1::DecodingMode>(7));
  ExpectCode(alice->Generate(mode).status, C::INVALID_ARGUMENT, "not a DecodingMode");
  v1::GenerateRequest stop = Gen("");
  stop.mutable_parameters()->set_early_stopping(static_cast<v1::EarlyStopping>(9));
  ExpectCode(alice->Generate(stop).status, C::INVALID_ARGUMENT, "not an EarlyStopping");
  v1::GenerateRequest nameless = Gen("");
  nameless.mutable_prompt()->set_version(3);
  ExpectCode(alice->Generate(nameless).status, C::INVALID_ARGUMENT, "without a prompt name");
  v1::GenerateRequest negative = Gen("keep");
  negative.mutable_prompt()->set_version(-2);
  ExpectCode(alice->Generate(negative).status, C::INVALID_ARGUMENT, "negative");
  // Client text in messages is quoted, escaped and cut.
  const grpc::Status long_name = alice->Generate(Gen(std::string(10000, 'x'))).status;
  ExpectCode(long_name, C::NOT_FOUND, "(9800 more bytes)");
  EXPECT_LT(long_name.error_message().size(), 400u);
  ExpectCode(alice->Generate(Gen("a\nb\x01")).status, C::NOT_FOUND, "'a\\x0ab\\x01'");
}

// Uploads are strict about what they store and bounded in what they take.
TEST_F(E2eTenancyTest, UploadsAreStrictAndBounded) {
  using C = grpc::StatusCode;
  auto alice = server_->ClientFor("alice");
  std::vector<float> absurd(2 * kDim, 0.5f);
  absurd[3] = 1e6f;
  PromptUpload big_values = Raw("absurd", 2);
  big_values.bytes = testing::RawPromptBytes(absurd, 2, kDim);
  ExpectCode(alice->UploadPrompt(big_values).status, C::INVALID_ARGUMENT, "max_prompt_abs_value");
  PromptUpload trailing = Raw("trailing", 2);
  trailing.bytes += std::string(50000, 'j');  // a valid prompt with junk after it
  ExpectCode(alice->UploadPrompt(trailing).status, C::INVALID_ARGUMENT, "follow the last tensor");
  at::Tensor p = at::ones({2, kDim});
  PromptUpload causal;
  causal.name = "causal";
  causal.format = v1::PROMPT_FORMAT_PEFT;
  causal.peft_config = testing::PeftAdapterConfig(2, kDim);
  causal.peft_config.replace(causal.peft_config.find("SEQ_2_SEQ_LM"), 12, "CAUSAL_LM");
  causal.bytes = testing::PeftAdapterWeights(p);
  ExpectCode(alice->UploadPrompt(causal).status, C::INVALID_ARGUMENT, "CAUSAL_LM");
  {
    RawUploadStream up(server_->target());
    v1::UploadPromptRequest header = RawHeader("declared-too-much");
    header.mutable_header()->set_total_bytes(10 << 20);
    up.writer->Write(header);
    up.writer->WritesDone();
    ExpectCode(up.writer->Finish(), C::RESOURCE_EXHAUSTED, "max_upload_bytes");
  }
  {
    RawUploadStream up(server_->target());
    up.writer->Write(RawHeader("streamed-too-much"));  // no size declared: the stream decides
    for (int i = 0; i < 4 && up.writer->Write(Chunk(std::string(60000, 'x'))); ++i) {
    }
    up.writer->WritesDone();
    ExpectCode(up.writer->Finish(), C::RESOURCE_EXHAUSTED, "max_upload_bytes");
  }
  // The digest is accepted in either case.
  PromptUpload upper = Raw("upper-digest", 2);
  {
    RawUploadStream up(server_->target());
    v1::UploadPromptRequest header = RawHeader("upper-digest");
    std::string digest = core::Sha256Hex(upper.bytes);
    for (char& c : digest) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    header.mutable_header()->set_sha256(digest);
    up.writer->Write(header);
    up.writer->Write(Chunk(upper.bytes));
    up.writer->WritesDone();
    ExpectCode(up.writer->Finish(), C::OK, "");
  }
  // Concurrent uploads per tenant: two may be open (max_uploads), a third is refused.
  {
    RawUploadStream first(server_->target()), second(server_->target());
    ASSERT_TRUE(first.writer->Write(RawHeader("slow-1")));
    ASSERT_TRUE(second.writer->Write(RawHeader("slow-2")));
    // A written message is not yet a received one: wait until the server counts both uploads
    // (its gauge), so that the third is refused for the limit and not by a race.
    const std::string two = "softserve_uploads_in_progress 2";
    std::string metrics;
    for (int i = 0; i < 1500 && metrics.find(two) == std::string::npos; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      metrics = testing::HttpGet(server_->metrics_port(), "/metrics");
    }
    ASSERT_NE(metrics.find(two), std::string::npos) << "the server never saw both uploads open:\n" << metrics;
    PromptUpload third = Raw("third", 2);
    ExpectCode(alice->UploadPrompt(third).status, C::RESOURCE_EXHAUSTED, "max_uploads");
    ExpectCode(server_->ClientFor("bob")->UploadPrompt(Raw("bobs", 2)).status, C::OK, "");  // others are not blocked
    first.context.TryCancel();
    second.context.TryCancel();
  }
}

// A tenant learns nothing about other tenants or the server's disk from GetModelInfo.
TEST_F(E2eTenancyTest, ModelInfoShowsOnlyTheCallersOwn) {
  auto bob = server_->ClientFor("bob");
  auto root = server_->ClientFor("root");
  ASSERT_TRUE(server_->ClientFor("alice")->UploadPrompt(Raw("info-a1", 2)).ok());
  const int64_t bobs = bob->ListPrompts(v1::ListPromptsRequest()).value.prompts_size();
  auto info = bob->GetModelInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info.value.registered_prompts(), bobs);  // bob's own versions, not alice's
  EXPECT_EQ(info.value.model_dir(), "t5-tiny-v1_0");  // no path on the server's disk
  EXPECT_EQ(info.value.limits().tenant_max_uploads(), 2);
  EXPECT_EQ(info.value.prompt_store(), "local");
  auto admin = root->GetModelInfo();
  EXPECT_EQ(admin.value.model_dir(), testing::ReferenceModelDir("t5-tiny-v1_0"));
}

}  // namespace
}  // namespace softserve
