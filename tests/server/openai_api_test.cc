// OpenAI Completions translation: what each field becomes, what is refused and why, and the
// response shapes built from stream messages.
#include "server/openai_api.h"

#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace softserve::server {
namespace {

using nlohmann::json;

CompletionCall Parse(const json& body) {
  auto c = ParseCompletionRequest(body.dump(), 99);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : CompletionCall();
}

void ExpectRefused(const std::string& body, const std::string& needle) {
  auto c = ParseCompletionRequest(body, 1);
  ASSERT_FALSE(c.ok()) << body;
  EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
}

TEST(OpenAiApiTest, ModelNamesAPromptItsVersionOrNone) {
  CompletionCall c = Parse({{"model", "@base"}, {"prompt", "x"}});
  EXPECT_FALSE(c.request.has_prompt());
  c = Parse({{"model", "summarize"}, {"prompt", "x"}});
  EXPECT_EQ(c.request.prompt().name(), "summarize");
  EXPECT_EQ(c.request.prompt().version(), 0);
  c = Parse({{"model", "summarize@12"}, {"prompt", "x"}});
  EXPECT_EQ(c.request.prompt().name(), "summarize");
  EXPECT_EQ(c.request.prompt().version(), 12);
  EXPECT_EQ(c.model, "summarize@12");
  ExpectRefused(R"({"prompt": "x"})", "'model' is required");
  ExpectRefused(R"({"model": "a@", "prompt": "x"})", "version >= 1");
  ExpectRefused(R"({"model": "a@0", "prompt": "x"})", "version >= 1");
  ExpectRefused(R"({"model": "a@99999999999999999999", "prompt": "x"})", "version >= 1");
}

TEST(OpenAiApiTest, PromptsOfEveryShapeBecomeInputsInOrder) {
  CompletionCall c = Parse({{"model", "@base"}, {"prompt", {"a", "b"}}});
  ASSERT_EQ(c.choices, 2);
  EXPECT_EQ(c.request.inputs(1).text(), "b");
  c = Parse({{"model", "@base"}, {"prompt", {5, 6, 1}}});
  ASSERT_EQ(c.choices, 1);
  EXPECT_EQ(c.request.inputs(0).ids().ids_size(), 3);
  c = Parse({{"model", "@base"}, {"prompt", {json::array({5, 1}), json::array({7, 1})}}});
  ASSERT_EQ(c.choices, 2);
  EXPECT_EQ(c.request.inputs(1).ids().ids(0), 7);
  ExpectRefused(R"({"model": "@base"})", "'prompt' is required");
  ExpectRefused(R"({"model": "@base", "prompt": []})", "'prompt' must be");
  ExpectRefused(R"({"model": "@base", "prompt": [1, "a"]})", "integers");
  ExpectRefused(R"({"model": "@base", "prompt": 3})", "'prompt' must be");
}

TEST(OpenAiApiTest, TemperatureZeroIsGreedyOtherwiseSamplingWithTheSeedOrARandomOne) {
  CompletionCall c = Parse({{"model", "@base"}, {"prompt", "x"}, {"temperature", 0}});
  EXPECT_EQ(c.request.parameters().mode(), v1::DECODING_MODE_GREEDY);
  EXPECT_EQ(c.request.parameters().max_new_tokens(), 16);  // OpenAI's default
  c = Parse({{"model", "@base"}, {"prompt", "x"}});        // OpenAI's default temperature is 1
  EXPECT_EQ(c.request.parameters().mode(), v1::DECODING_MODE_SAMPLE);
  EXPECT_EQ(c.request.parameters().seed(), 99u);  // the caller's random seed
  c = Parse({{"model", "@base"}, {"prompt", "x"}, {"temperature", 0.5}, {"top_p", 0.8}, {"top_k", 4}, {"seed", 7},
             {"max_tokens", 5}, {"min_tokens", 2}, {"truncate_prompt_tokens", 30}, {"logprobs", 0},
             {"stop", {"\n", "###"}}, {"time_limit_ms", 250}, {"repetition_penalty", 1.2}});
  const v1::DecodingParameters& d = c.request.parameters();
  EXPECT_EQ(d.mode(), v1::DECODING_MODE_SAMPLE);
  EXPECT_EQ(d.temperature(), 0.5);
  EXPECT_EQ(d.top_p(), 0.8);
  EXPECT_EQ(d.top_k(), 4);
  EXPECT_EQ(d.seed(), 7u);
  EXPECT_EQ(d.max_new_tokens(), 5);
  EXPECT_EQ(d.min_new_tokens(), 2);
  EXPECT_EQ(d.truncate_input_tokens(), 30);
  EXPECT_TRUE(d.return_logprobs());
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(std::vector<std::string>(d.stop_sequences().begin(), d.stop_sequences().end()),
            (std::vector<std::string>{"\n", "###"}));
  EXPECT_EQ(d.time_limit_ms(), 250);
  EXPECT_EQ(d.repetition_penalty(), 1.2);
  EXPECT_FALSE(Parse({{"model", "@base"}, {"prompt", "x"}}).request.parameters().has_repetition_penalty());
  EXPECT_EQ(Parse({{"model", "@base"}, {"prompt", "x"}, {"stop", "END"}}).request.parameters().stop_sequences(0), "END");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "temperature": -1})", "'temperature'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "temperature": "hot"})", "'temperature' must be a number");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "max_tokens": 0})", "'max_tokens'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "max_tokens": 2.5})", "'max_tokens' must be an integer");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "seed": -3})", "'seed'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "temperature": 0, "top_k": 3})", "'top_k' needs sampling");
}

TEST(OpenAiApiTest, WhatCannotBeHonouredIsRefusedNotIgnored) {
  ExpectRefused("{not json", "not valid JSON");
  ExpectRefused("[1]", "JSON object");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "frobnicate": 1})", "'frobnicate' is not a field");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "n": 2})", "'n' must be 1");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "best_of": 3})", "'best_of'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "echo": true})", "'echo'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "presence_penalty": 0.5})", "'presence_penalty'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "logit_bias": {"5": 1}})", "'logit_bias'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "suffix": "end"})", "'suffix'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "stop": [1]})", "'stop'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "logprobs": -1})", "'logprobs'");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "stream_options": {"include_usage": true}})", "needs \"stream\"");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "stream": true, "stream_options": {"x": 1}})", "stream_options.x");
  ExpectRefused(R"({"model": "@base", "prompt": "x", "user": 5})", "'user'");
  // Neutral values of those fields are fine.
  Parse({{"model", "@base"}, {"prompt", "x"}, {"n", 1}, {"echo", false}, {"stop", nullptr}, {"logit_bias", json::object()},
         {"presence_penalty", 0}, {"frequency_penalty", 0.0}, {"user", "u-1"}, {"suffix", nullptr}, {"best_of", nullptr}});
}

v1::GenerateStreamResponse Token(int index, const std::string& delta, float logprob) {
  v1::GenerateStreamResponse m;
  m.set_input_index(index);
  m.set_text_delta(delta);
  m.set_logprob(logprob);
  return m;
}

v1::GenerateStreamResponse Final(int index, const std::string& text, v1::FinishReason reason, int input_tokens,
                                 int outputs) {
  v1::GenerateStreamResponse m;
  m.set_input_index(index);
  m.mutable_final()->set_text(text);
  m.mutable_final()->set_finish_reason(reason);
  m.mutable_final()->set_input_tokens(input_tokens);
  for (int i = 0; i < outputs; ++i) m.mutable_final()->add_output_ids(i);
  return m;
}

TEST(OpenAiApiTest, ChunksCarryDeltasAndTheResponseCarriesChoicesAndUsage) {
  CompletionCall c = Parse({{"model", "p@2"}, {"prompt", {"a", "b"}}, {"logprobs", 0}, {"stream", true},
                            {"stream_options", {{"include_usage", true}}}});
  CompletionBuilder b(c, "cmpl-7", 1700000000);
  json chunk = json::parse(b.Take(Token(0, "Hal", -0.5f)));
  EXPECT_EQ(chunk["id"], "cmpl-7");
  EXPECT_EQ(chunk["object"], "text_completion");
  EXPECT_EQ(chunk["created"], 1700000000);
  EXPECT_EQ(chunk["model"], "p@2");
  EXPECT_EQ(chunk["choices"][0]["text"], "Hal");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["token_logprobs"][0], -0.5);
  EXPECT_TRUE(chunk.contains("usage") && chunk["usage"].is_null());
  b.Take(Token(1, "x", -1.0f));
  b.Take(Token(0, "lo", -0.25f));
  // The final text may hold what the deltas have not carried yet (a held-back piece).
  chunk = json::parse(b.Take(Final(0, "Hallo!", v1::FINISH_REASON_EOS, 4, 3)));
  EXPECT_EQ(chunk["choices"][0]["text"], "!");
  EXPECT_EQ(chunk["choices"][0]["finish_reason"], "stop");
  chunk = json::parse(b.Take(Final(1, "x", v1::FINISH_REASON_MAX_TOKENS, 2, 1)));
  EXPECT_EQ(chunk["choices"][0]["finish_reason"], "length");
  json usage = json::parse(b.UsageChunk());
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], json({{"prompt_tokens", 6}, {"completion_tokens", 4}, {"total_tokens", 10}}));
  json r = json::parse(b.Response());
  ASSERT_EQ(r["choices"].size(), 2u);
  EXPECT_EQ(r["choices"][0]["text"], "Hallo!");
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"], json({"Hal", "lo"}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["text_offset"], json({0, 3}));
  EXPECT_EQ(r["choices"][1]["index"], 1);
  EXPECT_EQ(r["usage"]["total_tokens"], 10);
}

TEST(OpenAiApiTest, LogprobsNAsksForTopAlternativesInOpenAisShape) {
  CompletionCall c = Parse({{"model", "@base"}, {"prompt", "a"}, {"logprobs", 2}});
  EXPECT_EQ(c.request.parameters().top_logprobs(), 2);
  EXPECT_TRUE(c.request.parameters().return_logprobs());
  CompletionBuilder b(c, "cmpl-1", 1);
  v1::GenerateStreamResponse m = Token(0, " Haus", -0.1f);
  v1::TopLogprobs* top = m.mutable_top_logprobs();
  for (auto [id, text, lp] : {std::tuple<int, const char*, float>{5, " Haus", -0.1f}, {9, " Hof", -2.5f}}) {
    top->add_token_ids(id);
    top->add_tokens(text);
    top->add_logprobs(lp);
  }
  json chunk = json::parse(b.Take(m));
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["top_logprobs"], json::array({{{" Haus", -0.1f}, {" Hof", -2.5f}}}));
  b.Take(Final(0, " Haus", v1::FINISH_REASON_MAX_TOKENS, 2, 1));
  json r = json::parse(b.Response());
  EXPECT_EQ(r["choices"][0]["logprobs"]["top_logprobs"], json::array({{{" Haus", -0.1f}, {" Hof", -2.5f}}}));
  // logprobs 0: no alternatives.
  EXPECT_EQ(Parse({{"model", "@base"}, {"prompt", "a"}, {"logprobs", 0}}).request.parameters().top_logprobs(), 0);
}

TEST(OpenAiApiTest, ModelsListTheBaseThenEachPromptByNameAndVersion) {
  std::vector<v1::Prompt> prompts(3);
  prompts[0].set_name("b");
  prompts[0].set_version(1);
  prompts[1].set_name("a");
  prompts[1].set_version(1);
  prompts[2].set_name("a");
  prompts[2].set_version(2);
  for (auto& p : prompts) p.set_tenant("t");
  json j = json::parse(ModelsResponse(prompts, 5));
  std::vector<std::string> ids;
  for (const json& m : j["data"]) ids.push_back(m["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"@base", "a", "a@2", "a@1", "b", "b@1"}));
  EXPECT_EQ(j["data"][1]["owned_by"], "t");
  EXPECT_EQ(j["object"], "list");
}

TEST(OpenAiApiTest, StatusesMapToHttpAndOpenAisErrorShape) {
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INTERNAL), 500);
  json e = json::parse(ErrorBody(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down"));
  EXPECT_EQ(e, json({{"error", {{"message", "slow down"}, {"type", "rate_limit_error"}, {"param", nullptr},
                                {"code", "resource_exhausted"}}}}));
}

}  // namespace
}  // namespace softserve::server
