// The OpenAI-compatible HTTP front-end, end to end: the real server (libtorch, gRPC and
// cpp-httplib in one process) driven by clients nobody on the project wrote: curl and the
// `openai` npm package. What HTTP returns is checked against what the gRPC API returns for the
// same request (whose outputs the reference tests check against Hugging Face).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/common/file_util.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/reference_data.h"

namespace softserve {
namespace {

using nlohmann::json;
using client::v1::GenerateRequest;

struct HttpReply {
  int status = 0;
  std::string headers;  // lower-cased
  std::string body;
};

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string ReadOrEmpty(const std::string& path) {
  auto s = core::ReadFileToString(path);
  return s.ok() ? *s : std::string();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/softserve-http-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One request with curl; headers are "Name: value" lines.
HttpReply Curl(int port, const std::string& method, const std::string& path, const std::string& body,
               const std::vector<std::string>& headers, const std::string& extra = "") {
  TempDir dir;
  EXPECT_TRUE(core::WriteFileDurably(dir.path() + "/body", body).ok());
  std::string cmd = "curl -sS -X " + method + " -D " + dir.path() + "/headers -o " + dir.path() +
                    "/out -w '%{http_code}' " + extra;
  for (const std::string& h : headers) cmd += " -H '" + h + "'";
  if (!body.empty()) cmd += " -H 'Content-Type: application/json' --data-binary @" + dir.path() + "/body";
  cmd += " http://127.0.0.1:" + std::to_string(port) + path + " 2>&1";
  HttpReply r;
  r.status = std::atoi(Shell(cmd).c_str());
  r.headers = ReadOrEmpty(dir.path() + "/headers");
  for (char& c : r.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  r.body = ReadOrEmpty(dir.path() + "/out");
  return r;
}

json Parse(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << text;
  return j;
}

// A server-sent-events body: its JSON chunks in order, whether "data: [DONE]" came last, and the
// first line that is not a "data: " event or follows [DONE] (empty when none).
struct SseEvents {
  std::vector<json> chunks;
  bool done = false;
  std::string bad_line;
};

SseEvents ParseSse(const std::string& body) {
  SseEvents e;
  std::istringstream events(body);
  std::string line;
  while (std::getline(events, line)) {
    if (line.empty()) continue;
    if (line.rfind("data: ", 0) != 0 || e.done) {
      if (e.bad_line.empty()) e.bad_line = line;
      continue;
    }
    if (line == "data: [DONE]") {
      e.done = true;
      continue;
    }
    e.chunks.push_back(Parse(line.substr(6)));
  }
  return e;
}

// The error body's shape and its HTTP status.
void ExpectError(const HttpReply& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.body;
  json j = Parse(r.body);
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r.body;
  EXPECT_TRUE(j["error"]["type"].is_string());
}

std::string Bearer(const std::string& key) { return "Authorization: Bearer " + key; }

constexpr const char* kText = "translate English to German: the house is small";

class E2eHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::ServerOptions o;
    o.model_dir = testing::VariedTextModelDir();
    o.tenants = {{"alice", "alice-key"}, {"bob", "bob-key"}, {"one", "one-key", false, 100, 64 << 20, 1}};
    o.http = true;
    o.extra_args = {"--max-message-bytes", "1000000"};
    server_ = new testing::ServerProcess(o);
  }
  static void TearDownTestSuite() { delete server_; }

  // The gRPC API's answer to the same request.
  static client::v1::Generation GrpcGenerate(const std::string& tenant, const std::string& text, double temperature,
                                              double top_p, uint64_t seed, int max_new, const std::string& prompt = "",
                                              int64_t version = 0) {
    GenerateRequest req;
    req.add_inputs()->set_text(text);
    auto* d = req.mutable_parameters();
    d->set_max_new_tokens(max_new);
    d->set_return_logprobs(true);
    if (temperature > 0) {
      d->set_mode(client::v1::DECODING_MODE_SAMPLE);
      d->set_temperature(temperature);
      d->set_top_p(top_p);
      d->set_seed(seed);
    }
    if (!prompt.empty()) {
      req.mutable_prompt()->set_name(prompt);
      req.mutable_prompt()->set_version(version);
    }
    auto r = server_->ClientFor(tenant)->Generate(req);
    EXPECT_TRUE(r.ok()) << r.status.error_message();
    return r.ok() ? r.value.results(0) : client::v1::Generation();
  }

  static HttpReply Complete(const json& body, const std::string& key = "alice-key",
                            const std::vector<std::string>& more_headers = {}) {
    std::vector<std::string> headers = more_headers;
    headers.push_back(Bearer(key));
    return Curl(server_->http_port(), "POST", "/v1/completions", body.dump(), headers);
  }

  static testing::ServerProcess* server_;
};
testing::ServerProcess* E2eHttpTest::server_ = nullptr;

TEST_F(E2eHttpTest, CompletionsOverCurlEqualTheGrpcApisOutputs) {
  // Greedy (temperature 0), with each token's log-probability.
  HttpReply r = Complete({{"model", "@base"}, {"prompt", kText}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = Parse(r.body);
  const client::v1::Generation g = GrpcGenerate("alice", kText, 0, 1, 0, 8);
  ASSERT_FALSE(g.text().empty());
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "@base");
  EXPECT_EQ(j["choices"][0]["text"], g.text());
  EXPECT_EQ(j["choices"][0]["finish_reason"], g.finish_reason() == client::v1::FINISH_REASON_EOS ? "stop" : "length");
  const json& lp = j["choices"][0]["logprobs"]["token_logprobs"];
  ASSERT_EQ(lp.size(), static_cast<size_t>(g.token_logprobs_size()));
  for (int i = 0; i < g.token_logprobs_size(); ++i) EXPECT_EQ(lp[i].get<float>(), g.token_logprobs(i)) << i;
  EXPECT_EQ(j["usage"]["prompt_tokens"], g.input_tokens());
  EXPECT_EQ(j["usage"]["completion_tokens"], g.output_ids_size());
  EXPECT_EQ(j["usage"]["total_tokens"], g.input_tokens() + g.output_ids_size());
  // The id names the call: the response header and the completion id agree.
  const std::string id = j["id"].get<std::string>();
  ASSERT_EQ(id.rfind("cmpl-", 0), 0u) << id;
  EXPECT_NE(r.headers.find("x-request-id: " + id.substr(5)), std::string::npos) << r.headers;

  // Sampling with a seed: exactly the tokens the gRPC API samples for the same seed.
  r = Complete({{"model", "@base"}, {"prompt", {kText, "hello world"}}, {"max_tokens", 6}, {"temperature", 0.8},
                {"top_p", 0.9}, {"seed", 11}});
  ASSERT_EQ(r.status, 200) << r.body;
  j = Parse(r.body);
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][0]["text"], GrpcGenerate("alice", kText, 0.8, 0.9, 11, 6).text());
  EXPECT_EQ(j["choices"][1]["text"], GrpcGenerate("alice", "hello world", 0.8, 0.9, 11, 6).text());
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());

  // Stop sequences: the text ends before the first one, as the gRPC API's does.
  const std::string full = g.text();
  const std::string stop = full.substr(full.size() / 2, 3);
  r = Complete({{"model", "@base"}, {"prompt", kText}, {"max_tokens", 8}, {"temperature", 0}, {"stop", {stop, "zzzz"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  j = Parse(r.body);
  EXPECT_EQ(j["choices"][0]["text"], full.substr(0, full.find(stop)));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");

  // The client's request id is the call's.
  r = Complete({{"model", "@base"}, {"prompt", "x"}, {"max_tokens", 1}}, "alice-key", {"x-request-id: my-call-17"});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r.body)["id"], "cmpl-my-call-17");
  EXPECT_NE(server_->Log().find("\"request_id\":\"my-call-17\""), std::string::npos);
}

// Server-sent events: one chunk per token with its text delta, each choice's finish reason, the
// usage when asked for, then [DONE].
TEST_F(E2eHttpTest, StreamingSendsDeltasThenFinishUsageAndDone) {
  const json body = {{"model", "@base"}, {"prompt", kText}, {"max_tokens", 8}, {"temperature", 0.7},
                     {"seed", 3},        {"stream", true},  {"stream_options", {{"include_usage", true}}},
                     {"logprobs", 0}};
  HttpReply r = Curl(server_->http_port(), "POST", "/v1/completions", body.dump(), {Bearer("alice-key")}, "-N");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("content-type: text/event-stream"), std::string::npos) << r.headers;
  const client::v1::Generation g = GrpcGenerate("alice", kText, 0.7, 1.0, 3, 8);
  const SseEvents events = ParseSse(r.body);
  EXPECT_EQ(events.bad_line, "") << "not an event, or after [DONE]";
  const bool done = events.done;
  std::string text, finish;
  std::vector<float> logprobs;
  int token_chunks = 0;
  json usage;
  for (const json& chunk : events.chunks) {
    EXPECT_EQ(chunk["object"], "text_completion");
    if (!chunk["usage"].is_null()) usage = chunk["usage"];
    for (const json& c : chunk["choices"]) {
      text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
      if (!c["logprobs"].is_null()) {
        ++token_chunks;
        logprobs.push_back(c["logprobs"]["token_logprobs"][0].get<float>());
      }
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(text, g.text());
  EXPECT_EQ(token_chunks, g.output_ids_size());
  ASSERT_EQ(logprobs.size(), static_cast<size_t>(g.token_logprobs_size()));
  for (size_t i = 0; i < logprobs.size(); ++i) EXPECT_EQ(logprobs[i], g.token_logprobs(static_cast<int>(i)));
  EXPECT_EQ(finish, g.finish_reason() == client::v1::FINISH_REASON_EOS ? "stop" : "length");
  ASSERT_FALSE(usage.is_null());
  EXPECT_EQ(usage["completion_tokens"], g.output_ids_size());
}

TEST_F(E2eHttpTest, PromptsAreModelsAndStayTheirTenants) {
  std::vector<float> values(2 * 64, 0.0f);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.05f * static_cast<float>(i % 7) - 0.1f;
  client::PromptUpload up;
  up.name = "german";
  up.bytes = testing::RawPromptBytes(values, 2, 64);
  auto stored = server_->ClientFor("alice")->UploadPrompt(up);
  ASSERT_TRUE(stored.ok()) << stored.status.error_message();
  HttpReply r = Curl(server_->http_port(), "GET", "/v1/models", "", {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = Parse(r.body);
  EXPECT_EQ(j["object"], "list");
  std::vector<std::string> ids;
  for (const json& m : j["data"]) ids.push_back(m["id"]);
  EXPECT_NE(std::find(ids.begin(), ids.end(), "@base"), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), "german"), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), "german@1"), ids.end());
  // Bob sees only the base model, and cannot use alice's prompt.
  j = Parse(Curl(server_->http_port(), "GET", "/v1/models", "", {Bearer("bob-key")}).body);
  ASSERT_EQ(j["data"].size(), 1u) << j.dump();
  ExpectError(Complete({{"model", "german"}, {"prompt", kText}}, "bob-key"), 404, "german");
  // With the prompt, the output is the gRPC API's with the same prompt (and not the base model's).
  for (const char* model : {"german", "german@1"}) {
    r = Complete({{"model", model}, {"prompt", kText}, {"max_tokens", 8}, {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Parse(r.body)["choices"][0]["text"], GrpcGenerate("alice", kText, 0, 1, 0, 8, "german", 1).text());
    EXPECT_EQ(Parse(r.body)["model"], model);
  }
  ExpectError(Complete({{"model", "german@2"}, {"prompt", kText}}), 404, "german");
  ExpectError(Complete({{"model", "german@x"}, {"prompt", kText}}), 400, "version");
}

TEST_F(E2eHttpTest, ErrorsHaveOpenAisShapeAndTheRightStatus) {
  const json ok = {{"model", "@base"}, {"prompt", "hi"}, {"max_tokens", 2}};
  // 401: no key, an unknown key.
  ExpectError(Curl(server_->http_port(), "POST", "/v1/completions", ok.dump(), {}), 401, "authorization");
  ExpectError(Complete(ok, "nope"), 401, "API key");
  // 400: not JSON, an unknown field, what softserve cannot honour, a bad value the server refuses.
  ExpectError(Curl(server_->http_port(), "POST", "/v1/completions", "{nope", {Bearer("alice-key")}), 400, "JSON");
  json bad = ok;
  bad["temprature"] = 0.5;
  ExpectError(Complete(bad), 400, "'temprature'");
  bad = ok;
  bad["n"] = 2;
  ExpectError(Complete(bad), 400, "'n'");
  bad = ok;
  bad["stop"] = std::vector<std::string>(17, "x");
  ExpectError(Complete(bad), 400, "stop sequences");
  bad = ok;
  bad["echo"] = true;
  ExpectError(Complete(bad), 400, "'echo'");
  bad = ok;
  bad["max_tokens"] = 100000;
  ExpectError(Complete(bad), 400, "max_new_tokens");
  bad = ok;
  bad["repetition_penalty"] = 0;
  ExpectError(Complete(bad), 400, "repetition_penalty");
  bad = ok;
  bad["prompt"] = {{1, 2}, "x", 3};
  ExpectError(Complete(bad), 400, "'prompt'");
  // 404: an unknown prompt, an unknown path.
  bad = ok;
  bad["model"] = "nobody";
  ExpectError(Complete(bad), 404, "nobody");
  ExpectError(Curl(server_->http_port(), "GET", "/v1/chat", "", {}), 404, "no endpoint");
  // 413: a body over the message size limit.
  bad = ok;
  bad["prompt"] = std::string(1100000, 'a');
  ExpectError(Complete(bad), 413, "too large");
  // 504: the call's deadline passes before its 400 tokens are generated.
  json slow = {{"model", "@base"}, {"prompt", kText}, {"max_tokens", 400}, {"min_tokens", 400}, {"temperature", 0}};
  ExpectError(Complete(slow, "alice-key", {"x-request-timeout-seconds: 0.05"}), 504, "");
  ExpectError(Complete(ok, "alice-key", {"x-request-timeout-seconds: soon"}), 400, "x-request-timeout-seconds");
}

// 429: tenant "one" may have one call in flight; while a gRPC stream of it runs, HTTP is refused.
TEST_F(E2eHttpTest, AQuotaIs429AndTheSameForBothTransports) {
  GenerateRequest req;
  req.add_inputs()->set_text(kText);
  req.mutable_parameters()->set_max_new_tokens(400);
  req.mutable_parameters()->set_min_new_tokens(400);
  grpc::ClientContext context;
  std::atomic<int> seen{0};
  HttpReply r;
  std::thread holder([&] {
    (void)server_->ClientFor("one")->GenerateStream(
        req, [&](const client::v1::GenerateStreamResponse&) { ++seen; }, &context);
  });
  while (seen == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r = Complete({{"model", "@base"}, {"prompt", "hi"}, {"max_tokens", 2}}, "one-key");
  context.TryCancel();
  holder.join();
  ExpectError(r, 429, "max_inflight");
}

// The `openai` npm package, installed in the test's own directory, against the server.
TEST_F(E2eHttpTest, TheOpenAiNodePackageWorksAgainstIt) {
  TempDir dir;
  const std::string install = Shell("cd " + dir.path() +
                                  " && npm install --no-audit --no-fund openai@5.23.2 > npm.log 2>&1; echo $?");
  ASSERT_EQ(std::atoi(install.c_str()), 0) << ReadOrEmpty(dir.path() + "/npm.log");
  const std::string out =
      Shell("OPENAI_DIR=" + dir.path() + " BASE_URL=http://127.0.0.1:" + std::to_string(server_->http_port()) +
          "/v1 API_KEY=alice-key MODEL=@base PROMPT='" + kText + "' node " + std::string(SOFTSERVE_SOURCE_DIR) +
          "/tests/e2e/openai_client.mjs 2>&1");
  json j = Parse(out);
  ASSERT_TRUE(j.is_object()) << out;
  const client::v1::Generation greedy = GrpcGenerate("alice", kText, 0, 1, 0, 8);
  const client::v1::Generation sampled = GrpcGenerate("alice", kText, 0.8, 0.9, 7, 8);
  EXPECT_EQ(j["greedy"]["text"], greedy.text());
  EXPECT_EQ(j["greedy"]["usage"]["completion_tokens"], greedy.output_ids_size());
  ASSERT_EQ(j["greedy"]["token_logprobs"].size(), static_cast<size_t>(greedy.token_logprobs_size()));
  EXPECT_EQ(j["greedy"]["token_logprobs"][0].get<float>(), greedy.token_logprobs(0));
  EXPECT_EQ(j["sampled"]["text"], sampled.text());
  EXPECT_EQ(j["stream"]["text"], sampled.text());
  EXPECT_EQ(j["stream"]["usage"]["completion_tokens"], sampled.output_ids_size());
  EXPECT_GE(j["stream"]["chunks"].get<int>(), sampled.output_ids_size());
  EXPECT_EQ(j["models"][0], "@base");
  EXPECT_EQ(j["bad_key"]["status"], 401) << j["bad_key"].dump();
  EXPECT_EQ(j["unknown_model"]["status"], 404) << j["unknown_model"].dump();
  EXPECT_EQ(j["bad_request"]["status"], 400) << j["bad_request"].dump();
}

// Without a tokenizer (the reference checkpoint): token-id prompts, checked against Hugging
// Face's greedy outputs. These run in the sanitizer builds too, which cannot load the tokenizer.
class E2eHttpIdsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::ServerOptions o;
    o.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
    o.http = true;
    server_ = new testing::ServerProcess(o);
  }
  static void TearDownTestSuite() { delete server_; }
  static testing::ServerProcess* server_;
};
testing::ServerProcess* E2eHttpIdsTest::server_ = nullptr;

TEST_F(E2eHttpIdsTest, TokenIdPromptsGiveHuggingFacesGreedyLengthsAndEnds) {
  testing::ReferenceCases cases("t5-tiny-v1_0");
  json prompts = json::array();
  for (int row = 0; row < 3; ++row) prompts.push_back(cases.Ids("generate.row" + std::to_string(row) + ".input_ids"));
  // max_new_tokens=12 as in the reference; HF's sequences start with the decoder start token.
  const json body = {{"model", "@base"}, {"prompt", prompts}, {"max_tokens", 12}, {"temperature", 0}, {"logprobs", 0}};
  HttpReply r = Curl(server_->http_port(), "POST", "/v1/completions", body.dump(), {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = Parse(r.body);
  ASSERT_EQ(j["choices"].size(), 3u) << r.body;
  int64_t completion = 0;
  for (int row = 0; row < 3; ++row) {
    const std::vector<int64_t> ref = cases.Ids("generate.row" + std::to_string(row) + ".greedy");
    const json& c = j["choices"][row];
    EXPECT_EQ(c["logprobs"]["token_logprobs"].size(), ref.size() - 1) << row;
    EXPECT_EQ(c["finish_reason"], ref.back() == 1 ? "stop" : "length") << row;
    completion += static_cast<int64_t>(ref.size()) - 1;
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], completion);
  // Streamed: one event per generated token, then the finish events and [DONE].
  json stream = body;
  stream["stream"] = true;
  r = Curl(server_->http_port(), "POST", "/v1/completions", stream.dump(), {Bearer("alice-key")}, "-N");
  ASSERT_EQ(r.status, 200) << r.body;
  int token_events = 0, finishes = 0;
  const SseEvents events = ParseSse(r.body);
  for (const json& chunk : events.chunks) {
    for (const json& c : chunk["choices"]) {
      if (!c["logprobs"].is_null()) ++token_events;
      if (!c["finish_reason"].is_null()) ++finishes;
    }
  }
  EXPECT_EQ(token_events, completion);
  EXPECT_EQ(finishes, 3);
  EXPECT_TRUE(events.done && events.bad_line.empty()) << r.body.substr(0, 2000);
  // Top alternatives: at the first step, the largest of log_softmax(HF's logits), on both
  // transports (without a tokenizer, OpenAI's {text: logprob} uses the id as the text).
  const at::Tensor lp = at::log_softmax(cases.Float("decoder.logits")[0][0].to(at::kDouble), -1);
  auto [values, indices] = at::topk(lp, 3);
  json top_body = body;
  top_body["prompt"] = prompts[0];
  top_body["logprobs"] = 3;
  r = Curl(server_->http_port(), "POST", "/v1/completions", top_body.dump(), {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  const json first = Parse(r.body)["choices"][0]["logprobs"]["top_logprobs"][0];
  ASSERT_EQ(first.size(), 3u) << first.dump();
  client::v1::GenerateRequest grpc_req;
  grpc_req.add_inputs()->mutable_ids()->mutable_ids()->Add(prompts[0].begin(), prompts[0].end());
  grpc_req.mutable_parameters()->set_max_new_tokens(12);
  grpc_req.mutable_parameters()->set_top_logprobs(3);
  auto g = server_->ClientFor("alice")->Generate(grpc_req);
  ASSERT_TRUE(g.ok()) << g.status.error_message();
  const client::v1::TopLogprobs& step0 = g.value.results(0).top_logprobs(0);
  ASSERT_EQ(step0.token_ids_size(), 3);
  for (int k = 0; k < 3; ++k) {
    const int64_t id = indices[k].item<int64_t>();
    EXPECT_EQ(step0.token_ids(k), id) << k;
    EXPECT_NEAR(step0.logprobs(k), values[k].item<double>(), 1e-4) << k;
    ASSERT_TRUE(first.contains(std::to_string(id))) << first.dump();
    EXPECT_NEAR(first[std::to_string(id)].get<double>(), values[k].item<double>(), 1e-4) << k;
  }
  // A bad prompt among good ones: its choice says "error" (with the error), the others complete.
  json mixed = body;
  mixed["prompt"] = {prompts[0], json::array({99999}), prompts[1]};
  r = Curl(server_->http_port(), "POST", "/v1/completions", mixed.dump(), {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  j = Parse(r.body);
  EXPECT_EQ(j["choices"][1]["finish_reason"], "error");
  EXPECT_EQ(j["choices"][1]["error"]["code"], "invalid_argument");
  EXPECT_EQ(j["choices"][0]["logprobs"]["token_logprobs"].size(), cases.Ids("generate.row0.greedy").size() - 1);
  EXPECT_EQ(j["choices"][2]["logprobs"]["token_logprobs"].size(), cases.Ids("generate.row1.greedy").size() - 1);
  // Text needs the tokenizer this server does not have: the gRPC status, as a 400.
  ExpectError(Curl(server_->http_port(), "POST", "/v1/completions",
                   json({{"model", "@base"}, {"prompt", "words"}}).dump(), {Bearer("alice-key")}),
              400, "tokenizer");
  // The front-end's own metrics: requests by route and status.
  std::string metrics;
  for (int i = 0; i < 100 && metrics.find("route=\"/v1/completions\"") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = testing::HttpGet(server_->metrics_port(), "/metrics");
  }
  EXPECT_NE(metrics.find("softserve_http_requests_total{code=\"200\",route=\"/v1/completions\"}"), std::string::npos)
      << metrics.substr(0, 3000);
  EXPECT_NE(metrics.find("softserve_http_requests_total{code=\"400\",route=\"/v1/completions\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("softserve_http_request_duration_seconds_count{route=\"/v1/completions\"}"), std::string::npos);
}

// A client that goes away cancels its call: the access log says so.
TEST_F(E2eHttpIdsTest, AClientThatHangsUpCancelsItsCall) {
  const std::string body = json({{"model", "@base"}, {"prompt", {37, 62, 19, 1}}, {"max_tokens", 400}, {"min_tokens", 400},
                                 {"temperature", 0}, {"stream", true}})
                               .dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice-key\r\n"
                              "x-request-id: walks-away\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->http_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  ::close(fd);  // before the first byte of the answer: the server learns it when it writes
  bool cancelled = false;
  for (int i = 0; i < 500 && !cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string log = server_->Log();
    const size_t at = log.find("\"request_id\":\"walks-away\"");
    cancelled = at != std::string::npos && log.find("\"status\":\"CANCELLED\"", at) != std::string::npos;
  }
  EXPECT_TRUE(cancelled) << server_->Log().substr(0, 4000);
}

// POST /v1/completions/{id}/cancel ends a streamed completion sent with that x-request-id:
// its last choice says "cancelled" and the usage counts the tokens it had.
TEST_F(E2eHttpIdsTest, ACompletionCanBeCancelledByItsRequestId) {
  const std::string id = "http-cancel-" + std::to_string(::getpid());
  const json body = {{"model", "@base"},  {"prompt", {37, 62, 19, 1}}, {"max_tokens", 500},
                     {"min_tokens", 500}, {"temperature", 0},          {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  HttpReply stream;
  std::atomic<bool> done{false};
  std::thread t([&] {
    stream = Curl(server_->http_port(), "POST", "/v1/completions", body.dump(),
                  {Bearer("alice-key"), "x-request-id: " + id}, "-N");
    done = true;
  });
  HttpReply cancel;
  while (!done && cancel.status != 200) {
    cancel = Curl(server_->http_port(), "POST", "/v1/completions/" + id + "/cancel", "", {Bearer("alice-key")});
    if (cancel.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  t.join();
  ASSERT_EQ(cancel.status, 200) << "the completion ended before it could be cancelled: " << cancel.body;
  json c = Parse(cancel.body);
  EXPECT_EQ(c["id"], id);
  EXPECT_EQ(c["calls"], 1);
  ASSERT_EQ(stream.status, 200) << stream.body;
  std::string finish;
  int64_t completion_tokens = -1;
  const SseEvents events = ParseSse(stream.body);
  for (const json& chunk : events.chunks) {
    for (const json& ch : chunk["choices"]) {
      if (ch["finish_reason"].is_string()) finish = ch["finish_reason"];
    }
    if (chunk.contains("usage") && !chunk["usage"].is_null()) completion_tokens = chunk["usage"]["completion_tokens"];
  }
  EXPECT_TRUE(events.done && events.bad_line.empty()) << stream.body.substr(0, 2000);
  EXPECT_EQ(finish, "cancelled") << stream.body.substr(0, 2000);
  EXPECT_GE(completion_tokens, 0) << "no usage event";  // 0 when the cancel came before the first token
  EXPECT_LT(completion_tokens, 500);
  // Over: 404 in OpenAI's error shape (that another tenant cannot reach a running call is
  // shown over gRPC, in E2eGenerationControlsTest).
  ExpectError(Curl(server_->http_port(), "POST", "/v1/completions/" + id + "/cancel", "", {Bearer("alice-key")}), 404,
              "no Generate or GenerateStream call");
  ExpectError(Curl(server_->http_port(), "POST", "/v1/completions/" + id + "/cancel", "", {Bearer("bob-key")}), 404,
              "in progress for this tenant");
}

// The TrainingService over HTTP (protobuf's JSON mapping): start a job, follow it, see its
// prompt among the models and complete with it; cancel a long one; bad bodies and other
// tenants' ids are refused.
TEST_F(E2eHttpIdsTest, TrainingJobsOverHttp) {
  testing::ReferenceCases cases("t5-tiny-v1_0");
  json example = {{"input", {{"ids", {{"ids", cases.Ids("generate.row0.input_ids")}}}}},
                  {"target", {{"ids", {{"ids", {37, 62, 1}}}}}}};
  json body = {{"prompt_name", "http-trained"}, {"train", {example, example}}, {"options", {{"steps", 2}, {"prompt_length", 4}, {"dropout", 0.1}}}};
  HttpReply r = Curl(server_->http_port(), "POST", "/v1/training/jobs", body.dump(), {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = Parse(r.body)["id"];
  ExpectError(Curl(server_->http_port(), "GET", "/v1/training/jobs/" + id, "", {Bearer("bob-key")}), 404, "no training job");
  json job;
  for (int i = 0; i < 500; ++i) {
    job = Parse(Curl(server_->http_port(), "GET", "/v1/training/jobs/" + id, "", {Bearer("alice-key")}).body);
    if (job["state"] != "TRAINING_STATE_QUEUED" && job["state"] != "TRAINING_STATE_RUNNING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(job["state"], "TRAINING_STATE_SUCCEEDED") << job.dump();
  EXPECT_EQ(job["prompt"]["name"], "http-trained");
  const json models = Parse(Curl(server_->http_port(), "GET", "/v1/models", "", {Bearer("alice-key")}).body);
  EXPECT_NE(models.dump().find("http-trained@1"), std::string::npos) << models.dump();
  const json completion = {{"model", "http-trained"}, {"prompt", cases.Ids("generate.row0.input_ids")}, {"max_tokens", 3},
                           {"temperature", 0}};
  EXPECT_EQ(Curl(server_->http_port(), "POST", "/v1/completions", completion.dump(), {Bearer("alice-key")}).status, 200);
  // A long job, cancelled.
  body["prompt_name"] = "http-long";
  body["options"]["steps"] = 90000;
  r = Curl(server_->http_port(), "POST", "/v1/training/jobs", body.dump(), {Bearer("alice-key")});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string long_id = Parse(r.body)["id"];
  EXPECT_EQ(Curl(server_->http_port(), "POST", "/v1/training/jobs/" + long_id + "/cancel", "", {Bearer("alice-key")}).status, 200);
  for (int i = 0; i < 500; ++i) {
    job = Parse(Curl(server_->http_port(), "GET", "/v1/training/jobs/" + long_id, "", {Bearer("alice-key")}).body);
    if (job["state"] == "TRAINING_STATE_CANCELLED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(job["state"], "TRAINING_STATE_CANCELLED") << job.dump();
  const json list = Parse(Curl(server_->http_port(), "GET", "/v1/training/jobs", "", {Bearer("alice-key")}).body);
  EXPECT_EQ(list["jobs"].size(), 2u) << list.dump();
  ExpectError(Curl(server_->http_port(), "POST", "/v1/training/jobs", R"({"prompt_name": "x", "nope": 1})", {Bearer("alice-key")}),
              400, "not a TrainPromptRequest");
}

// SIGTERM: during the drain notice the server refuses new work; over HTTP that is a 503.
TEST(E2eHttpDrainTest, ADrainingServerAnswers503) {
  testing::ServerOptions o;
  o.model_dir = testing::TextModelDir();
  o.http = true;
  o.extra_args = {"--drain-notice-seconds", "3"};
  testing::ServerProcess server(o);
  ::kill(server.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const json body = {{"model", "@base"}, {"prompt", "hi"}, {"max_tokens", 2}};
  ExpectError(Curl(server.http_port(), "POST", "/v1/completions", body.dump(), {Bearer("alice-key")}), 503, "draining");
  EXPECT_EQ(server.Terminate(30), 0);
}

}  // namespace
}  // namespace softserve
