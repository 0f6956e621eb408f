// TrainingService against the real server: a job trains on the engine thread with the served
// (packed) model and registers its prompt as a new version that serves at once. The trained
// values are checked against tests/data/prompt-training (plain PyTorch autograd, independent of
// our code): the service, started from the stored initial prompt on the stored batch, follows
// the stored AdamW and Adafactor trajectories. Also: progress while it runs, tenants' isolation,
// limits, cancellation, requests served correctly while a job trains, and a kill -9 mid-job.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

namespace v1 = client::v1;

constexpr const char* kModel = "t5-tiny-v1_0";

testing::ReferenceCases TrainingCases() {
  return testing::ReferenceCases::InDir(testing::TestDataDir() + "/prompt-training/" + kModel);
}

// The stored batch as id examples (inputs without padding, labels without -100).
void AddBatch(const testing::ReferenceCases& cases, google::protobuf::RepeatedPtrField<v1::TrainingExample>* out) {
  const at::Tensor ids = cases.Int("batch.input_ids"), mask = cases.Int("batch.attention_mask");
  const at::Tensor labels = cases.Int("batch.labels");
  for (int64_t b = 0; b < ids.size(0); ++b) {
    v1::TrainingExample* e = out->Add();
    for (int64_t t = 0; t < ids.size(1); ++t) {
      if (mask[b][t].item<int64_t>() != 0) e->mutable_input()->mutable_ids()->add_ids(ids[b][t].item<int64_t>());
    }
    for (int64_t t = 0; t < labels.size(1); ++t) {
      if (labels[b][t].item<int64_t>() != -100) e->mutable_target()->mutable_ids()->add_ids(labels[b][t].item<int64_t>());
    }
  }
}

bool Ended(const v1::TrainingJob& j) {
  return j.state() == v1::TRAINING_STATE_SUCCEEDED || j.state() == v1::TRAINING_STATE_FAILED ||
         j.state() == v1::TRAINING_STATE_CANCELLED;
}

v1::TrainingJob WaitEnded(client::Client* c, const std::string& id) {
  v1::TrainingJobRef ref;
  ref.set_id(id);
  for (int i = 0; i < 3000; ++i) {
    auto j = c->GetTrainingJob(ref);
    EXPECT_TRUE(j.ok()) << j.status.error_message();
    if (!j.ok() || Ended(j.value)) return j.value;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "job " << id << " did not end";
  return v1::TrainingJob();
}

class E2eTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new testing::ServerProcess({testing::ReferenceModelDir(kModel)}); }
  static void TearDownTestSuite() { delete server_; }
  static testing::ServerProcess* server_;
};
testing::ServerProcess* E2eTrainingTest::server_ = nullptr;

// Started from the stored initial prompt on the stored batch (3 examples, one step each), the
// job's per-step losses and the registered prompt follow the stored trajectory; the watch stream
// shows every step, then the registered version, which serves.
TEST_F(E2eTrainingTest, AJobFollowsTheReferenceTrajectoryAndItsPromptServes) {
  const testing::ReferenceCases cases = TrainingCases();
  auto alice = server_->ClientFor("alice");
  client::PromptUpload init;
  init.name = "pt-init";
  init.bytes = testing::RawPromptFile(cases.Float("pt.prompt"));
  ASSERT_TRUE(alice->UploadPrompt(init).ok());
  for (const std::string traj : {"pt.adamw", "pt.adafactor"}) {
    v1::TrainPromptRequest req;
    req.set_prompt_name("pt-trained-" + traj.substr(3));
    AddBatch(cases, req.mutable_train());
    req.mutable_init_prompt()->set_name("pt-init");
    v1::TrainingOptions* o = req.mutable_options();
    o->set_optimizer(traj == "pt.adamw" ? "adamw" : "adafactor");
    o->set_steps(3);
    o->set_batch_size(req.train_size());
    o->set_no_shuffle(true);
    auto started = alice->TrainPrompt(req);
    ASSERT_TRUE(started.ok()) << started.status.error_message();
    EXPECT_EQ(started.value.options().init(), "prompt:pt-init@1");
    EXPECT_EQ(started.value.total_steps(), 3);
    std::vector<v1::TrainingJob> seen;
    v1::TrainingJobRef ref;
    ref.set_id(started.value.id());
    const grpc::Status w = alice->WatchTrainingJob(ref, [&](const v1::TrainingJob& j) { seen.push_back(j); },
                                                   std::chrono::seconds(120));
    ASSERT_TRUE(w.ok()) << w.error_message();
    ASSERT_FALSE(seen.empty());
    const v1::TrainingJob& last = seen.back();
    ASSERT_EQ(last.state(), v1::TRAINING_STATE_SUCCEEDED) << last.error_message();
    // Each step's reported loss is its batch's loss before the step: the stored losses[0..2].
    const at::Tensor losses = cases.Float(traj + ".loss");
    std::vector<bool> step_seen(4, false);
    for (const v1::TrainingJob& j : seen) {
      if (j.step() < 1 || j.step() > 3 || step_seen[j.step()]) continue;
      step_seen[j.step()] = true;
      EXPECT_NEAR(j.loss(), losses[j.step() - 1].item<double>(), 0.0005) << traj << " step " << j.step();
    }
    EXPECT_TRUE(step_seen[3]);
    EXPECT_EQ(last.prompt().name(), req.prompt_name());
    EXPECT_EQ(last.prompt().version(), 1);
    // The registered values: the stored parameters after step 3.
    v1::GetPromptRequest get;
    get.set_name(req.prompt_name());
    get.set_include_values(true);
    auto stored = alice->GetPrompt(get);
    ASSERT_TRUE(stored.ok()) << stored.status.error_message();
    const at::Tensor expected = cases.Float(traj + ".prompt")[2].contiguous();
    ASSERT_EQ(stored.value.values_size(), expected.numel());
    double err = 0;
    for (int64_t i = 0; i < expected.numel(); ++i) {
      err = std::max(err, std::abs(static_cast<double>(stored.value.values(static_cast<int>(i))) - expected.view(-1)[i].item<double>()));
    }
    EXPECT_LE(err, 0.005) << traj;
    // It serves at once.
    v1::GenerateRequest gen;
    gen.add_inputs()->mutable_ids()->add_ids(37);
    gen.mutable_prompt()->set_name(req.prompt_name());
    auto g = alice->Generate(gen);
    ASSERT_TRUE(g.ok()) << g.status.error_message();
    EXPECT_EQ(g.value.prompt().version(), 1);
  }
}

// A long job: other tenants cannot see or touch it, the tenant's job limit holds, requests are
// served with Hugging Face's outputs while it trains, and cancelling it registers nothing.
TEST_F(E2eTrainingTest, JobsAreTheTenantsOwnLimitedCancellableAndServingGoesOn) {
  const testing::ReferenceCases cases = TrainingCases();
  testing::ReferenceCases ref_cases(kModel);
  auto alice = server_->ClientFor("alice");
  auto bob = server_->ClientFor("bob");
  v1::TrainPromptRequest req;
  req.set_prompt_name("long");
  AddBatch(cases, req.mutable_train());
  req.mutable_options()->set_prompt_length(4);
  req.mutable_options()->set_steps(90000);
  auto started = alice->TrainPrompt(req);
  ASSERT_TRUE(started.ok()) << started.status.error_message();
  v1::TrainingJobRef ref;
  ref.set_id(started.value.id());
  EXPECT_EQ(bob->GetTrainingJob(ref).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bob->CancelTrainingJob(ref).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bob->ListTrainingJobs(v1::ListTrainingJobsRequest()).value.jobs_size(), 0);
  EXPECT_EQ(alice->TrainPrompt(req).status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Serving while it trains: greedy outputs are still Hugging Face's.
  for (int row = 0; row < 3; ++row) {
    v1::GenerateRequest gen;
    v1::TokenIds* input = gen.add_inputs()->mutable_ids();
    for (int64_t id : ref_cases.Ids("generate.row" + std::to_string(row) + ".input_ids")) input->add_ids(id);
    gen.mutable_parameters()->set_max_new_tokens(12);
    auto g = bob->Generate(gen);
    ASSERT_TRUE(g.ok()) << g.status.error_message();
    const std::vector<int64_t> want = ref_cases.Ids("generate.row" + std::to_string(row) + ".greedy");
    EXPECT_EQ(std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()),
              std::vector<int64_t>(want.begin() + 1, want.end()))
        << row;
  }
  auto running = alice->GetTrainingJob(ref);
  for (int i = 0; i < 3000 && running.ok() && running.value.step() == 0; ++i) {  // slow under sanitizers
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    running = alice->GetTrainingJob(ref);
  }
  ASSERT_TRUE(running.ok());
  EXPECT_GT(running.value.step(), 0) << "the job made no progress in 30 s";
  EXPECT_EQ(running.value.state(), v1::TRAINING_STATE_RUNNING);
  ASSERT_TRUE(alice->CancelTrainingJob(ref).ok());
  const v1::TrainingJob ended = WaitEnded(alice.get(), ref.id());
  EXPECT_EQ(ended.state(), v1::TRAINING_STATE_CANCELLED);
  EXPECT_LT(ended.step(), 90000);
  v1::GetPromptRequest get;
  get.set_name("long");
  EXPECT_EQ(alice->GetPrompt(get).status.error_code(), grpc::StatusCode::NOT_FOUND);
  auto list = alice->ListTrainingJobs(v1::ListTrainingJobsRequest());
  ASSERT_TRUE(list.ok());
  ASSERT_GE(list.value.jobs_size(), 1);
  EXPECT_EQ(list.value.jobs(0).id(), ref.id());  // newest first
  const std::string metrics = testing::HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(metrics.find("softserve_training_jobs_ended_total{state=\"cancelled\"}"), std::string::npos) << metrics.substr(0, 3000);
  EXPECT_NE(metrics.find("softserve_training_steps_total"), std::string::npos);
  EXPECT_EQ(metrics.find("softserve_training_steps_total 0\n"), std::string::npos) << "no step counted";
}

// The dev metrics the job reports for the prompt it keeps equal what the served prompt does:
// exact match against Generate's greedy outputs, rank classification against Score (both checked
// against Hugging Face elsewhere).
TEST_F(E2eTrainingTest, DevMetricsAgreeWithTheServedPrompt) {
  const testing::ReferenceCases cases = TrainingCases();
  auto alice = server_->ClientFor("alice");
  for (const std::string metric : {"exact-match", "rank"}) {
    v1::TrainPromptRequest req;
    req.set_prompt_name("metric-" + metric);
    AddBatch(cases, req.mutable_train());
    const int64_t labels[3] = {37, 62, 99};  // one-token classes, so that memorising them is quick
    for (int i = 0; i < req.train_size(); ++i) {
      v1::TokenIds* t = req.mutable_train(i)->mutable_target()->mutable_ids();
      t->clear_ids();
      t->add_ids(labels[i % 3]);
      t->add_ids(1);
    }
    *req.mutable_dev() = req.train();
    req.mutable_options()->set_prompt_length(4);
    req.mutable_options()->set_steps(60);
    req.mutable_options()->set_eval_every(5);
    req.mutable_options()->set_dev_metric(metric);
    auto started = alice->TrainPrompt(req);
    ASSERT_TRUE(started.ok()) << started.status.error_message();
    const v1::TrainingJob done = WaitEnded(alice.get(), started.value.id());
    ASSERT_EQ(done.state(), v1::TRAINING_STATE_SUCCEEDED) << done.error_message();
    std::vector<v1::Input> targets;
    for (const v1::TrainingExample& e : req.dev()) targets.push_back(e.target());
    int right = 0;
    for (const v1::TrainingExample& e : req.dev()) {
      const std::vector<int64_t> want(e.target().ids().ids().begin(), e.target().ids().ids().end());
      if (metric == "exact-match") {
        v1::GenerateRequest gen;
        *gen.add_inputs() = e.input();
        gen.mutable_prompt()->set_name(req.prompt_name());
        gen.mutable_parameters()->set_max_new_tokens(static_cast<int32_t>(want.size()));
        auto g = alice->Generate(gen);
        ASSERT_TRUE(g.ok()) << g.status.error_message();
        right += std::vector<int64_t>(g.value.results(0).output_ids().begin(), g.value.results(0).output_ids().end()) == want;
      } else {
        v1::ScoreRequest score;
        *score.mutable_input() = e.input();
        for (const v1::Input& t : targets) *score.add_targets() = t;
        score.mutable_prompt()->set_name(req.prompt_name());
        auto r = alice->Score(score);
        ASSERT_TRUE(r.ok()) << r.status.error_message();
        const auto& best = r.value.scores(r.value.best()).target_ids();
        right += std::vector<int64_t>(best.begin(), best.end()) == want;
      }
    }
    EXPECT_NEAR(done.best_dev_accuracy(), right / 3.0, 1e-9) << metric;
    std::printf("dev %s: %d of 3 (kept step %lld)\n", metric.c_str(), right, static_cast<long long>(done.best_step()));
  }
}

TEST_F(E2eTrainingTest, BadRequestsAreRefusedWithTheReason) {
  const testing::ReferenceCases cases = TrainingCases();
  auto alice = server_->ClientFor("alice");
  v1::TrainPromptRequest good;
  good.set_prompt_name("x");
  AddBatch(cases, good.mutable_train());
  good.mutable_options()->set_steps(1);
  auto expect = [&](v1::TrainPromptRequest r, grpc::StatusCode code, const std::string& needle) {
    auto s = alice->TrainPrompt(r).status;
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(needle), std::string::npos) << s.error_message();
  };
  v1::TrainPromptRequest r = good;
  r.clear_prompt_name();
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "prompt_name");
  r = good;
  r.clear_train();
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "no training examples");
  r = good;
  r.mutable_train(0)->mutable_target()->mutable_ids()->add_ids(1 << 30);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "train example 0 target has token id");
  r = good;
  r.mutable_train(1)->mutable_input()->set_text("words");
  expect(r, grpc::StatusCode::FAILED_PRECONDITION, "no tokenizer");
  r = good;
  r.mutable_options()->set_method("lora");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "options.method");
  r = good;
  r.mutable_options()->set_prompt_length(100000);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "max_prompt_rows");
  r = good;
  r.mutable_options()->set_steps(1 << 30);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "max_training_steps");
  r = good;
  r.mutable_options()->set_dropout(1.0);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "options.dropout");
  r = good;
  r.mutable_options()->set_dev_metric("bleu");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "options.dev_metric");
  r = good;
  r.mutable_init_prompt()->set_name("nobody");
  expect(r, grpc::StatusCode::NOT_FOUND, "init_prompt");
  v1::TrainingJobRef missing;
  missing.set_id("train-nope");
  EXPECT_EQ(alice->GetTrainingJob(missing).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// kill -9 while a job trains: after the restart the prompt has no version (nothing half
// registered), and a new job of the same name registers version 1.
TEST(E2eTrainingCrashTest, AKilledServerLeavesNoHalfRegisteredPrompt) {
  const testing::ReferenceCases cases = TrainingCases();
  testing::ServerOptions o;
  o.model_dir = testing::ReferenceModelDir(kModel);
  auto first = std::make_unique<testing::ServerProcess>(o);
  const std::string store = first->store_dir();
  v1::TrainPromptRequest req;
  req.set_prompt_name("crash");
  AddBatch(cases, req.mutable_train());
  req.mutable_options()->set_prompt_length(4);
  req.mutable_options()->set_steps(90000);
  auto started = first->ClientFor("alice")->TrainPrompt(req);
  ASSERT_TRUE(started.ok()) << started.status.error_message();
  v1::TrainingJobRef ref;
  ref.set_id(started.value.id());
  for (int i = 0; i < 500 && first->ClientFor("alice")->GetTrainingJob(ref).value.step() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(first->pid(), SIGKILL), 0);
  first.reset();
  o.store_dir = store;
  testing::ServerProcess second(o);
  auto alice = second.ClientFor("alice");
  v1::GetPromptRequest get;
  get.set_name("crash");
  EXPECT_EQ(alice->GetPrompt(get).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(alice->GetTrainingJob(ref).status.error_code(), grpc::StatusCode::NOT_FOUND);  // jobs live in memory
  req.mutable_options()->set_steps(2);
  auto again = alice->TrainPrompt(req);
  ASSERT_TRUE(again.ok()) << again.status.error_message();
  ref.set_id(again.value.id());
  const v1::TrainingJob done = WaitEnded(alice.get(), ref.id());
  ASSERT_EQ(done.state(), v1::TRAINING_STATE_SUCCEEDED) << done.error_message();
  EXPECT_EQ(done.prompt().version(), 1);
}

}  // namespace
}  // namespace softserve
