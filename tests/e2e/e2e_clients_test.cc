// The server as users reach it: tokenization inside the real server process (next to gRPC,
// protobuf and libtorch), the `softserve` CLI binary, and a Python client built from our protos
// with Debian's stock gRPC tooling; server reflection as grpcurl uses it.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "core/common/file_util.h"
#include "core/common/json.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/testing/skip.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/peft_fixture.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/temp_dir.h"

namespace softserve {
namespace {

namespace v1 = ::softserve::v1;

struct ShellResult {
  int code;
  std::string out;
};

ShellResult Shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  ShellResult r{-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Csv(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

TEST(E2eClientsTest, TokenizesInsideTheServerProcess) {
  testing::ServerProcess server({testing::TextModelDir()});
  auto alice = server.ClientFor("alice");
  v1::TokenizeRequest t;
  t.set_text("translate English to German: The house is wonderful.");
  auto r = alice->Tokenize(t);
  ASSERT_TRUE(r.ok()) << r.status.error_message();
  // tests/data/t5-small/README.md
  EXPECT_EQ(std::vector<int64_t>(r.value.ids().begin(), r.value.ids().end()),
            (std::vector<int64_t>{13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5, 1}));
  EXPECT_EQ(r.value.pieces(5), "\xE2\x96\x81The");
  v1::TokenizeRequest back;
  for (int64_t id : {37, 32099, 10681, 16, 1}) back.mutable_ids()->add_ids(id);
  auto text = alice->Tokenize(back);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text.value.text(), "The<extra_id_0> walks in");
  // Text in, generation out, through the same process.
  v1::GenerateRequest g;
  g.add_inputs()->set_text("summarize: softserve serves soft prompts.");
  g.mutable_parameters()->set_max_new_tokens(5);
  auto gen = alice->Generate(g);
  ASSERT_TRUE(gen.ok()) << gen.status.error_message();
  v1::TokenizeRequest same;
  same.set_text(g.inputs(0).text());
  EXPECT_EQ(gen.value.results(0).input_tokens(), alice->Tokenize(same).value.ids_size());
  EXPECT_EQ(gen.value.results(0).output_ids_size(), 5);
  auto info = alice->GetModelInfo();
  EXPECT_TRUE(info.value.has_tokenizer());
  EXPECT_TRUE(info.value.random_weights());
}

TEST(E2eClientsTest, CliCoversEveryCommand) {
  testing::ServerProcess server({testing::ReferenceModelDir("t5-tiny-v1_0")});
  testing::ReferenceCases cases("t5-tiny-v1_0");
  const std::string cli = std::string(SOFTSERVE_BIN_DIR) + "/softserve --server " + server.target();
  const std::string as_alice = cli + " --api-key alice-key";
  const std::string residual = cases.dir() + "/residual_prompt.safetensors";

  ShellResult upload = Shell(as_alice + " --json prompt upload res " + residual);
  ASSERT_EQ(upload.code, 0) << upload.out;
  EXPECT_NE(upload.out.find("\"format\": \"PROMPT_FORMAT_RESIDUAL\""), std::string::npos) << upload.out;
  ShellResult list = Shell(as_alice + " prompt list");
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find("res@1\t[5, 64]"), std::string::npos) << list.out;
  EXPECT_EQ(Shell(as_alice + " prompt get res --values").code, 0);

  std::vector<int64_t> row0 = cases.Ids("generate.row0.input_ids");
  ShellResult gen = Shell(as_alice + " --json generate --ids " + Csv(row0) + " --prompt res --max-new-tokens 12");
  ASSERT_EQ(gen.code, 0) << gen.out;
  auto json = core::ParseJson(gen.out);
  ASSERT_TRUE(json.ok()) << gen.out;
  std::vector<int64_t> got;
  for (const auto& v : json->Find("results")->array()[0].Find("outputIds")->array()) got.push_back(std::stoll(v.string_value()));
  std::vector<int64_t> ref = cases.Ids("residual.row0.greedy");
  EXPECT_EQ(got, std::vector<int64_t>(ref.begin() + 1, ref.end()));
  ShellResult stream = Shell(as_alice + " generate --ids " + Csv(row0) + " --stream --max-new-tokens 3");
  EXPECT_EQ(stream.code, 0) << stream.out;
  // The generation controls reach the server: a 1 ms time limit on 400 tokens, top-3 alternatives.
  ShellResult controls = Shell(as_alice + " --json generate --ids " + Csv(row0) +
                               " --max-new-tokens 400 --min-new-tokens 400 --time-limit-ms 1 --repetition-penalty 1.3");
  ASSERT_EQ(controls.code, 0) << controls.out;
  EXPECT_NE(controls.out.find("FINISH_REASON_TIME_LIMIT"), std::string::npos) << controls.out;
  ShellResult top = Shell(as_alice + " --json generate --ids " + Csv(row0) + " --max-new-tokens 2 --top-logprobs 3");
  ASSERT_EQ(top.code, 0) << top.out;
  EXPECT_NE(top.out.find("\"tokenIds\""), std::string::npos) << top.out;
  EXPECT_EQ(Shell(as_alice + " score --ids " + Csv(row0) + " --target-ids 66,1 --target-ids 5,1").code, 0);
  EXPECT_EQ(Shell(as_alice + " ensemble --ids " + Csv(row0) + " --prompt res --prompt res --max-new-tokens 3").code, 0);
  EXPECT_EQ(Shell(as_alice + " explain --prompt res --top-k 2").code, 0);
  ShellResult model = Shell(as_alice + " model");
  EXPECT_NE(model.out.find("\"dModel\": \"64\""), std::string::npos) << model.out;
  ShellResult health = Shell(cli + " health");
  EXPECT_EQ(health.code, 0);
  EXPECT_NE(health.out.find("SERVING"), std::string::npos);
  ShellResult bench = Shell(as_alice + " --json bench --ids " + Csv(row0) + " --prompt res --requests 8 --concurrency 3 --max-new-tokens 4");
  ASSERT_EQ(bench.code, 0) << bench.out;
  auto bj = core::ParseJson(bench.out);
  ASSERT_TRUE(bj.ok()) << bench.out;
  EXPECT_EQ(bj->Find("requests")->int_value(), 8);
  EXPECT_EQ(bj->Find("failed")->int_value(), 0);
  EXPECT_GT(bj->Find("tokens_per_s")->number(), 0);
  ShellResult del = Shell(as_alice + " prompt delete res");
  EXPECT_EQ(del.code, 0);
  EXPECT_NE(del.out.find("deleted 1 version"), std::string::npos);

  // Errors: a one-line message naming the gRPC code, exit 1.
  ShellResult wrong = Shell(cli + " --api-key nope model");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.out.find("UNAUTHENTICATED"), std::string::npos) << wrong.out;
  ShellResult missing = Shell(as_alice + " generate --ids 5,1 --prompt nope");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("NOT_FOUND"), std::string::npos);
  EXPECT_EQ(Shell(as_alice + " generate --ids x,y").code, 2);
}

TEST(E2eClientsTest, PythonClientFromStockToolingUploadsAndGenerates) {
  if (!core::PathExists("/usr/bin/grpc_python_plugin")) SOFTSERVE_SKIP() << "grpc_python_plugin not installed";
  testing::ServerProcess server({testing::ReferenceModelDir("t5-tiny-v1_0")});
  testing::ReferenceCases cases("t5-tiny-v1_0");
  std::vector<int64_t> ref = cases.Ids("residual.row0.greedy");
  const std::string cmd = "/usr/bin/python3 " + std::string(SOFTSERVE_SOURCE_DIR) + "/tests/e2e/python_client.py " +
                          std::string(SOFTSERVE_SOURCE_DIR) + "/proto " + server.target() + " alice-key " +
                          cases.dir() + "/residual_prompt.safetensors " + Csv(cases.Ids("generate.row0.input_ids")) +
                          " " + Csv(std::vector<int64_t>(ref.begin() + 1, ref.end()));
  ShellResult py = Shell(cmd);
  EXPECT_EQ(py.code, 0) << py.out;
  EXPECT_NE(py.out.find("python client OK"), std::string::npos) << py.out;
}

// The Python package (client/python), installed with pip as a user would (offline here: the
// system's setuptools, grpcio and protobuf), used against the real server; its answers are
// checked against Hugging Face's in tests/e2e/python_package.py.
TEST(E2eClientsTest, PythonPackageInstallsWithPipAndMatchesHuggingFace) {
  testing::ServerProcess server({testing::ReferenceModelDir("t5-tiny-v1_0")});
  testing::ReferenceCases cases("t5-tiny-v1_0");
  testing::ScopedTempDir tmp;
  const std::string target_dir = tmp.File("site");
  // From a copy: pip builds in the source directory, which is not the test's to write to.
  ShellResult pip = Shell("cp -r " + std::string(SOFTSERVE_SOURCE_DIR) + "/client/python " + tmp.File("pkg") +
                          " && /usr/bin/python3 -m pip install --quiet --root-user-action=ignore --no-build-isolation --no-deps --no-index --target " +
                          target_dir + " " + tmp.File("pkg"));
  ASSERT_EQ(pip.code, 0) << pip.out;
  ASSERT_TRUE(core::WriteFileDurably(tmp.File("prompt_a.safetensors"), testing::RawPromptFile(cases.Float("prompt.a"))).ok());
  auto tail = [](std::vector<int64_t> ids) { return std::vector<int64_t>(ids.begin() + 1, ids.end()); };
  auto list = [](const std::vector<int64_t>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s + "]";
  };
  std::string candidates = "[";
  const at::Tensor cand = cases.Int("rank.candidates"), mask = cases.Int("rank.candidates_mask");
  for (int64_t c = 0; c < cand.size(0); ++c) {
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < cand.size(1); ++t) {
      if (mask[c][t].item<int64_t>() != 0) ids.push_back(cand[c][t].item<int64_t>());
    }
    candidates += (c ? "," : "") + list(ids);
  }
  candidates += "]";
  std::string totals = "[";
  const at::Tensor tot = cases.Float("rank.total_logprob");
  for (int64_t c = 0; c < tot.size(0); ++c) totals += (c ? "," : "") + std::to_string(tot[c].item<double>());
  totals += "]";
  const std::string json = "{\"install_dir\": \"" + target_dir + "\", \"input_ids\": " +
                           list(cases.Ids("generate.row0.input_ids")) + ", \"greedy\": " +
                           list(tail(cases.Ids("generate.row0.greedy"))) + ", \"residual_greedy\": " +
                           list(tail(cases.Ids("residual.row0.greedy"))) + ", \"row1_input_ids\": " +
                           list(cases.Ids("generate.row1.input_ids")) + ", \"row1_greedy\": " +
                           list(tail(cases.Ids("generate.row1.greedy"))) + ", \"prompt_a_file\": \"" +
                           tmp.File("prompt_a.safetensors") + "\", \"rank_input_ids\": " +
                           list(cases.Ids("rank.input_ids")) + ", \"rank_candidates\": " + candidates +
                           ", \"rank_totals\": " + totals + "}";
  ASSERT_TRUE(core::WriteFileDurably(tmp.File("cases.json"), json).ok());
  ShellResult py = Shell("cd " + tmp.path() + " && PYTHONPATH=" + target_dir + " /usr/bin/python3 " +
                         std::string(SOFTSERVE_SOURCE_DIR) + "/tests/e2e/python_package.py " + server.target() +
                         " alice-key " + cases.dir() + " " + tmp.File("cases.json"));
  EXPECT_EQ(py.code, 0) << py.out;
  EXPECT_NE(py.out.find("python package OK"), std::string::npos) << py.out;
}

// What grpcurl does first: list the services over reflection, then fetch the file that defines
// one. The answer must describe the API exactly as proto/softserve/v1/softserve.proto does.
TEST(E2eClientsTest, ServerReflectionListsAndDescribesEveryService) {
  namespace refl = ::grpc::reflection::v1alpha;
  testing::ServerProcess server({testing::ReferenceModelDir("t5-tiny-v1_0")});
  auto stub = refl::ServerReflection::NewStub(grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->ServerReflectionInfo(&ctx);
  refl::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  refl::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> services;
  for (const auto& sv : listed.list_services_response().service()) services.push_back(sv.name());
  for (const char* want : {"softserve.v1.PromptService", "softserve.v1.InferenceService", "softserve.v1.ModelService",
                           "grpc.health.v1.Health"}) {
    EXPECT_NE(std::find(services.begin(), services.end(), want), services.end()) << want;
  }

  refl::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("softserve.v1.InferenceService");
  ASSERT_TRUE(stream->Write(symbol));
  refl::ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  ASSERT_TRUE(described.has_file_descriptor_response()) << described.error_response().error_message();
  bool found = false;
  for (const std::string& bytes : described.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.name() != "softserve/v1/softserve.proto") continue;
    found = true;
    EXPECT_EQ(file.package(), "softserve.v1");
    std::vector<std::string> methods;
    for (const auto& svc : file.service()) {
      if (svc.name() != "InferenceService") continue;
      for (const auto& m : svc.method()) methods.push_back(m.name() + (m.server_streaming() ? " stream" : ""));
    }
    for (const char* want : {"Generate", "GenerateStream stream", "Score", "Ensemble", "Explain"}) {
      EXPECT_NE(std::find(methods.begin(), methods.end(), want), methods.end()) << want;
    }
  }
  EXPECT_TRUE(found) << "softserve/v1/softserve.proto not among the returned descriptors";

  refl::ServerReflectionRequest unknown;
  unknown.set_file_containing_symbol("softserve.v1.NoSuchService");
  ASSERT_TRUE(stream->Write(unknown));
  refl::ServerReflectionResponse error;
  ASSERT_TRUE(stream->Read(&error));
  EXPECT_EQ(error.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace softserve
