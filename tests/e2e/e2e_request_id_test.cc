// Request ids and the access log of the running server: the client's x-request-id comes back in
// the response's metadata (trailing always, initial when the call answers) and names the call's
// one JSON access-log line, which carries the
// tenant, RPC, prompt, tokens, times and status; a missing id is generated, a malformed one or a
// malformed W3C traceparent is refused with INVALID_ARGUMENT (and still gets an id).
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "core/common/json.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

namespace v1 = ::softserve::v1;
using core::JsonValue;

constexpr char kGenerate[] = "/softserve.v1.InferenceService/Generate";
constexpr char kTrace[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

testing::ServerOptions Options() {
  testing::ServerOptions o;
  o.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
  return o;
}

v1::GenerateRequest Request() {
  v1::GenerateRequest r;
  auto* ids = r.add_inputs()->mutable_ids();
  for (int64_t id : {5, 6, 7, 1}) ids->add_ids(id);
  r.mutable_parameters()->set_max_new_tokens(3);
  r.mutable_parameters()->set_min_new_tokens(3);
  return r;
}

std::string GenerateBytes() { return Request().SerializeAsString(); }

// The id in the trailing metadata (always there); a successful call must carry the same id in
// its initial metadata, a failed one none (it stays retryable: gRPC commits a call on headers).
std::string ReturnedId(const testing::RawCallResult& r) {
  auto trailing = r.trailing_metadata.find("x-request-id");
  auto initial = r.initial_metadata.find("x-request-id");
  if (r.status.ok()) {
    EXPECT_NE(initial, r.initial_metadata.end());
    if (initial != r.initial_metadata.end() && trailing != r.trailing_metadata.end()) {
      EXPECT_EQ(initial->second, trailing->second);
    }
  } else {
    EXPECT_EQ(initial, r.initial_metadata.end()) << "a refused call sent headers";
  }
  return trailing == r.trailing_metadata.end() ? "" : trailing->second;
}

// The access-log line naming `id`, parsed; waits briefly (the line is written as the call ends).
core::StatusOr<JsonValue> AccessLine(const testing::ServerProcess& server, const std::string& id) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::istringstream log(server.Log());
    for (std::string line; std::getline(log, line);) {
      if (line.empty() || line[0] != '{' || line.find("\"request_id\":\"" + id + "\"") == std::string::npos) continue;
      return core::ParseJson(line);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return core::NotFoundError("no access-log line for " + id);
}

TEST(E2eRequestIdTest, ClientIdComesBackAndNamesOneAccessLogLineWithTheCallsFacts) {
  testing::ServerProcess server(Options());
  auto r = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "alice-key",
                                 {{"x-request-id", "client-id-42"}, {"traceparent", kTrace}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(ReturnedId(r), "client-id-42");
  auto line = AccessLine(server, "client-id-42");
  ASSERT_TRUE(line.ok()) << server.Log();
  EXPECT_EQ(line->Find("rpc")->string_value(), "Generate");
  EXPECT_EQ(line->Find("tenant")->string_value(), "alice");
  EXPECT_EQ(line->Find("traceparent")->string_value(), kTrace);
  EXPECT_EQ(line->Find("input_tokens")->int_value(), 4);
  EXPECT_EQ(line->Find("output_tokens")->int_value(), 3);
  EXPECT_GE(line->Find("queue_seconds")->number(), 0);
  EXPECT_GE(line->Find("total_seconds")->number(), line->Find("queue_seconds")->number());
  EXPECT_EQ(line->Find("status")->string_value(), "OK");
  EXPECT_EQ(line->Find("error"), nullptr);
}

TEST(E2eRequestIdTest, MissingIdIsGeneratedAndMalformedIdsOrTraceContextAreRefused) {
  testing::ServerProcess server(Options());
  // No id: one is generated, returned and logged.
  auto plain = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "alice-key", {});
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  const std::string generated = ReturnedId(plain);
  EXPECT_EQ(generated.size(), 32u) << generated;
  EXPECT_EQ(generated.find_first_not_of("0123456789abcdef"), std::string::npos) << generated;
  auto plain_line = AccessLine(server, generated);
  ASSERT_TRUE(plain_line.ok()) << server.Log();
  EXPECT_EQ(plain_line->Find("traceparent"), nullptr);
  auto again = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "alice-key", {});
  EXPECT_NE(ReturnedId(again), generated);

  // A malformed id: INVALID_ARGUMENT naming the header, with a generated id to quote.
  // (gRPC's own client refuses to send anything but printable ASCII.)
  for (const std::string& bad : {std::string("has space"), std::string(129, 'a')}) {
    auto r = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "alice-key", {{"x-request-id", bad}});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(r.status.error_message().find("x-request-id"), std::string::npos) << r.status.error_message();
    const std::string id = ReturnedId(r);
    ASSERT_EQ(id.size(), 32u);
    EXPECT_NE(r.status.error_message().find(id), std::string::npos) << r.status.error_message();
    auto line = AccessLine(server, id);
    ASSERT_TRUE(line.ok()) << server.Log();
    EXPECT_EQ(line->Find("status")->string_value(), "INVALID_ARGUMENT");
  }
  // A malformed traceparent.
  auto trace = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "alice-key",
                                     {{"x-request-id", "trace-bad"}, {"traceparent", "00-xyz-01"}});
  EXPECT_EQ(trace.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(trace.status.error_message().find("traceparent"), std::string::npos) << trace.status.error_message();
  EXPECT_EQ(ReturnedId(trace), "trace-bad");

  // A call that fails authentication still has its id and its line, with no tenant.
  auto unauth = testing::RawUnaryCall(server.target(), kGenerate, GenerateBytes(), "wrong-key", {{"x-request-id", "who-am-i"}});
  EXPECT_EQ(unauth.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReturnedId(unauth), "who-am-i");
  auto unauth_line = AccessLine(server, "who-am-i");
  ASSERT_TRUE(unauth_line.ok()) << server.Log();
  EXPECT_TRUE(unauth_line->Find("tenant")->is_null());
  EXPECT_EQ(unauth_line->Find("status")->string_value(), "UNAUTHENTICATED");
}

TEST(E2eRequestIdTest, StreamsCarryTheIdAndLogTheirTokens) {
  testing::ServerProcess server(Options());
  auto alice = server.ClientFor("alice");
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "stream-7");
  int messages = 0;
  const grpc::Status st = alice->GenerateStream(Request(), [&](const v1::GenerateStreamResponse&) { ++messages; }, &context);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_GT(messages, 0);
  auto initial = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(initial, context.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(initial->second.data(), initial->second.size()), "stream-7");
  auto line = AccessLine(server, "stream-7");
  ASSERT_TRUE(line.ok()) << server.Log();
  EXPECT_EQ(line->Find("rpc")->string_value(), "GenerateStream");
  EXPECT_EQ(line->Find("tenant")->string_value(), "alice");
  EXPECT_EQ(line->Find("input_tokens")->int_value(), 4);
  EXPECT_EQ(line->Find("output_tokens")->int_value(), 3);
  EXPECT_EQ(line->Find("status")->string_value(), "OK");
}

}  // namespace
}  // namespace softserve
