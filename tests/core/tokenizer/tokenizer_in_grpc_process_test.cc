// The tokenizer inside a process that has gRPC, protobuf and libtorch loaded and working: a
// real gRPC server listening on 127.0.0.1, a protobuf message serialized, a torch op run, and
// SentencePiece (through the dlopen'ed shim) tokenizing — all in one process. Without the
// shim's RTLD_LOCAL | RTLD_DEEPBIND isolation this process crashes at start-up or at load.
#include <ATen/ATen.h>
#include <google/protobuf/struct.pb.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/generic/async_generic_service.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/tokenizer/tokenizer.h"
#include "tests/testing/reference_data.h"

namespace softserve::core {
namespace {

TEST(TokenizerInGrpcProcessTest, TokenizesBesideGrpcProtobufAndTorch) {
  int port = 0;
  grpc::CallbackGenericService generic;  // any service, so the server can start
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&generic);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(port, 0);

  google::protobuf::Struct message;
  (*message.mutable_fields())["text"].set_string_value("hello");
  std::string wire;
  ASSERT_TRUE(message.SerializeToString(&wire));
  EXPECT_FALSE(wire.empty());

  at::Tensor t = at::ones({2, 2});
  EXPECT_EQ(at::matmul(t, t).sum().item<float>(), 8.0f);

  auto tok = Tokenizer::Load(softserve::testing::TestDataDir() + "/t5-small/spiece.model");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto ids = (*tok)->Encode("translate English to German: The house is wonderful.");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ::testing::ElementsAre(13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5, 1));

  google::protobuf::Struct parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));  // protobuf still sound after the shim loaded
  EXPECT_EQ(parsed.fields().at("text").string_value(), "hello");
  server->Shutdown();
}

}  // namespace
}  // namespace softserve::core
