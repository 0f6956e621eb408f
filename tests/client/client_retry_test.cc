// The client library's retries are gRPC's retry policy: reads and inference are retried on
// UNAVAILABLE and on a server's CANCELLED, uploads and deletes never (an attempt the server acted on must not run twice).
// A real gRPC server on 127.0.0.1 whose handlers answer UNAVAILABLE counts the attempts.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "client/softserve_client.h"

namespace softserve::client {
namespace {

class FlakyModelService final : public v1::ModelService::Service {
 public:
  grpc::Status GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest*, v1::ModelInfo* r) override {
    if (++calls <= 2) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try again");
    r->set_tenant("t");
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

class UnavailablePromptService final : public v1::PromptService::Service {
 public:
  grpc::Status UploadPrompt(grpc::ServerContext*, grpc::ServerReader<v1::UploadPromptRequest>* reader, v1::Prompt*) override {
    ++uploads;
    v1::UploadPromptRequest m;
    while (reader->Read(&m)) {
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining");
  }
  grpc::Status DeletePrompt(grpc::ServerContext*, const v1::DeletePromptRequest*, v1::DeletePromptResponse*) override {
    ++deletes;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining");
  }
  grpc::Status ListPrompts(grpc::ServerContext*, const v1::ListPromptsRequest*, v1::ListPromptsResponse*) override {
    ++lists;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining");
  }
  std::atomic<int> uploads{0}, deletes{0}, lists{0};
};

ClientOptions LoopbackOptions(int port, int max_attempts, std::chrono::milliseconds backoff) {
  ClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(port);
  options.max_attempts = max_attempts;
  options.initial_backoff = backoff;
  return options;
}

TEST(ClientRetryTest, ReadsAreRetriedOnUnavailableUploadsAndDeletesNever) {
  FlakyModelService model;
  UnavailablePromptService prompts;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&model);
  builder.RegisterService(&prompts);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto client = Client::Connect(LoopbackOptions(port, 3, std::chrono::milliseconds(10))).value;

  auto info = client->GetModelInfo();
  EXPECT_TRUE(info.ok()) << info.status.error_message();
  EXPECT_EQ(model.calls.load(), 3);  // two UNAVAILABLE answers, then success

  PromptUpload upload;
  upload.name = "p";
  upload.bytes = std::string(100, 'x');
  EXPECT_EQ(client->UploadPrompt(upload).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(prompts.uploads.load(), 1);
  v1::DeletePromptRequest del;
  del.set_name("p");
  EXPECT_EQ(client->DeletePrompt(del).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(prompts.deletes.load(), 1);
  EXPECT_EQ(client->ListPrompts(v1::ListPromptsRequest()).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(prompts.lists.load(), 3);  // a read: attempted max_attempts times
  server->Shutdown();
}

// A call that reaches a server as it shuts down, before any handler took it, is answered
// CANCELLED by gRPC itself (grpc/grpc#41785): what a replica leaving a load balancer does to the
// call that raced its shutdown. Here the first server registers the service asynchronously and
// never takes a call, so the call is still pending when it shuts down; a replacement listens on
// the same port (gRPC sets SO_REUSEPORT), and the client's retry must reach it.
TEST(ClientRetryTest, ACallCaughtByAServerShutdownIsRetriedElsewhere) {
  v1::ModelService::AsyncService never_answers;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&never_answers);
  auto cq = builder.AddCompletionQueue();
  auto leaving = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  ClientOptions options = LoopbackOptions(port, 5, std::chrono::milliseconds(100));
  options.timeout = std::chrono::seconds(20);
  auto client = Client::Connect(options).value;
  Result<v1::ModelInfo> result;
  std::thread call([&] { result = client->GetModelInfo(); });
  // The call is pending on `leaving` once its connection is up and the request has been sent.
  auto channel = grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  FlakyModelService replacement;
  replacement.calls = 2;  // answers at once
  grpc::ServerBuilder next;
  next.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials());
  next.RegisterService(&replacement);
  auto arriving = next.BuildAndStart();
  ASSERT_NE(arriving, nullptr);
  leaving->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  cq->Shutdown();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
  }
  call.join();
  EXPECT_TRUE(result.ok()) << result.status.error_code() << " " << result.status.error_message();
  EXPECT_EQ(replacement.calls.load(), 3);
  arriving->Shutdown();
}

}  // namespace
}  // namespace softserve::client
