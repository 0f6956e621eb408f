// softserve: the command-line client. Every subcommand maps to one RPC (bench to many);
// --json prints the response message as JSON for scripts. Exit status: 0 OK, 1 the server said
// no (the message names the gRPC code), 2 bad usage.
#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <iostream>
#include <mutex>
#include <thread>

#include <openssl/rand.h>

#include "client/cli_common.h"
#include "client/softserve_client.h"

namespace softserve::client {
namespace {

bool ParseIds(const std::string& text, v1::TokenIds* out) {
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0') return false;
    out->add_ids(v);
  }
  return out->ids_size() > 0;
}


struct InputFlags {
  std::vector<std::string> texts, ids;
  void Add(CLI::App* cmd, const char* text_help = "input text (repeatable)") {
    cmd->add_option("--text", texts, text_help);
    cmd->add_option("--ids", ids, "input token ids, e.g. 3,4,5 (repeatable)");
  }
  // Fills inputs; false (with a message) on bad ids or none given.
  bool Fill(google::protobuf::RepeatedPtrField<v1::Input>* inputs) const {
    for (const auto& t : texts) inputs->Add()->set_text(t);
    for (const auto& i : ids) {
      if (!ParseIds(i, inputs->Add()->mutable_ids())) {
        std::fprintf(stderr, "softserve: --ids '%s' is not a comma-separated id list\n", i.c_str());
        return false;
      }
    }
    if (inputs->empty()) std::fprintf(stderr, "softserve: give --text or --ids\n");
    return !inputs->empty();
  }
};

struct DecodingFlags {
  int max_new_tokens = 20, min_new_tokens = 0, num_beams = 1, top_k = 0, top_logprobs = 0, time_limit_ms = 0,
      truncate_input_tokens = 0;
  double length_penalty = 1.0, temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
  uint64_t seed = 0;
  bool sample = false, logprobs = false;
  std::vector<std::string> stops;
  void Add(CLI::App* cmd) {
    cmd->add_option("--max-new-tokens", max_new_tokens, "tokens to generate at most")->capture_default_str();
    cmd->add_option("--min-new-tokens", min_new_tokens, "tokens before eos may end it")->capture_default_str();
    cmd->add_option("--num-beams", num_beams, "beam width (1 = greedy)")->capture_default_str();
    cmd->add_option("--length-penalty", length_penalty, "beam length penalty")->capture_default_str();
    cmd->add_flag("--sample", sample, "sample instead of greedy");
    cmd->add_option("--temperature", temperature, "sampling temperature")->capture_default_str();
    cmd->add_option("--top-k", top_k, "sampling top-k (0 = off)")->capture_default_str();
    cmd->add_option("--top-p", top_p, "sampling top-p (1 = off)")->capture_default_str();
    cmd->add_option("--seed", seed, "sampling seed")->capture_default_str();
    cmd->add_flag("--logprobs", logprobs, "per-token log-probabilities");
    cmd->add_option("--top-logprobs", top_logprobs, "also each token's N most likely alternatives")->capture_default_str();
    cmd->add_option("--repetition-penalty", repetition_penalty, "Hugging Face's repetition penalty (1 = off)")
        ->capture_default_str();
    cmd->add_option("--stop", stops, "stop sequence (repeatable): the text ends before the first one");
    cmd->add_option("--time-limit-ms", time_limit_ms, "end each output after this long with what it has (0 = off)")
        ->capture_default_str();
    cmd->add_option("--truncate-input-tokens", truncate_input_tokens, "keep each input's last N tokens (0 = off)")
        ->capture_default_str();
  }
  void Fill(v1::DecodingParameters* p) const {
    p->set_max_new_tokens(max_new_tokens);
    p->set_min_new_tokens(min_new_tokens);
    p->set_return_logprobs(logprobs);
    p->set_top_logprobs(top_logprobs);
    if (repetition_penalty != 1.0) p->set_repetition_penalty(repetition_penalty);
    for (const std::string& s : stops) p->add_stop_sequences(s);
    p->set_time_limit_ms(time_limit_ms);
    p->set_truncate_input_tokens(truncate_input_tokens);
    if (sample) {
      p->set_mode(v1::DECODING_MODE_SAMPLE);
      p->set_temperature(temperature);
      p->set_top_k(top_k);
      p->set_top_p(top_p);
      p->set_seed(seed);
    } else if (num_beams > 1) {
      p->set_mode(v1::DECODING_MODE_BEAM);
      p->set_num_beams(num_beams);
      p->set_length_penalty(length_penalty);
    }
  }
};

void PrintGeneration(const v1::Generation& g) {
  std::printf("%s\n  ids:", g.text().c_str());
  for (int64_t id : g.output_ids()) std::printf(" %lld", static_cast<long long>(id));
  std::string finish = v1::FinishReason_Name(g.finish_reason());
  finish = finish.substr(std::string("FINISH_REASON_").size());
  std::transform(finish.begin(), finish.end(), finish.begin(), [](unsigned char c) { return std::tolower(c); });
  if (g.finish_reason() == v1::FINISH_REASON_ERROR) finish += " (" + g.error_message() + ")";
  if (g.finish_reason() == v1::FINISH_REASON_STOP_SEQUENCE) finish += " \"" + g.stop_sequence() + "\"";
  std::printf("\n  finish: %s, score %.4f, %.3f s\n", finish.c_str(), g.score(), g.total_seconds());
}

int Bench(Client& client, const InputFlags& in, const DecodingFlags& dec, const std::vector<std::string>& prompts,
          int requests, int concurrency, bool json) {
  v1::GenerateRequest base;
  if (!in.Fill(base.mutable_inputs())) return 2;
  dec.Fill(base.mutable_parameters());
  std::atomic<int> next{0}, done{0}, failed{0};
  std::atomic<int64_t> tokens{0};
  std::mutex mu;
  std::vector<double> latencies;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (int i = next++; i < requests; i = next++) {
      v1::GenerateRequest req = base;
      if (!prompts.empty()) *req.mutable_prompt() = ParsePromptRef(prompts[i % prompts.size()]);
      const auto s = std::chrono::steady_clock::now();
      auto r = client.Generate(req);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
      if (r.ok()) {
        for (const auto& g : r.value.results()) tokens += g.output_ids_size();
      } else {
        ++failed;
      }
      std::lock_guard<std::mutex> l(mu);
      latencies.push_back(sec);
      ++done;
    }
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) threads.emplace_back(worker);
  while (done < requests) {
    if (!json) {
      const int d = done, width = 40, filled = requests ? d * width / requests : width;
      std::fprintf(stderr, "\r[%s%s] %d/%d", std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(), d, requests);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * (latencies.size() - 1) + 0.5))]; };
  if (json) {
    std::printf("{\"requests\": %d, \"failed\": %d, \"seconds\": %.3f, \"requests_per_s\": %.3f, \"tokens_per_s\": %.2f, "
                "\"p50_s\": %.4f, \"p90_s\": %.4f, \"p99_s\": %.4f}\n",
                requests, failed.load(), wall, requests / wall, tokens / wall, pct(0.5), pct(0.9), pct(0.99));
  } else {
    std::fprintf(stderr, "\n");
    std::printf("%d requests (%d failed) in %.2f s: %.2f requests/s, %.1f tokens/s\nlatency p50 %.3f s, p90 %.3f s, p99 %.3f s\n",
                requests, failed.load(), wall, requests / wall, tokens / wall, pct(0.5), pct(0.9), pct(0.99));
  }
  return failed ? 1 : 0;
}


void AddPromptCommands(CLI::App* app, const Globals& g, std::vector<Command>* commands) {
  auto* prompt = app->add_subcommand("prompt", "manage soft prompts");
  prompt->require_subcommand(1);
  struct Flags {
    std::string name, path, format = "auto", tenant, prefix, page_token;
    int64_t version = 0;
    int page_size = 100;
    bool values = false;
  };
  auto f = std::make_shared<Flags>();
  auto* upload = prompt->add_subcommand("upload", "upload a raw safetensors file, a PEFT adapter directory or a residual checkpoint");
  upload->add_option("name", f->name, "prompt name")->required();
  upload->add_option("path", f->path, "file or PEFT adapter directory")->required();
  upload->add_option("--format", f->format, "auto, raw, peft or residual")->capture_default_str();
  auto* list = prompt->add_subcommand("list", "list prompts (latest version of each name)");
  list->add_option("--prefix", f->prefix, "name prefix");
  list->add_option("--page-size", f->page_size, "names per page")->capture_default_str();
  list->add_option("--page-token", f->page_token, "from the previous page");
  auto* get = prompt->add_subcommand("get", "show one prompt version");
  get->add_option("name", f->name, "prompt name")->required();
  get->add_option("--version", f->version, "0 = latest")->capture_default_str();
  get->add_flag("--values", f->values, "include the matrix values");
  auto* del = prompt->add_subcommand("delete", "delete one version, or all (version 0)");
  del->add_option("name", f->name, "prompt name")->required();
  del->add_option("--version", f->version, "0 = every version")->capture_default_str();
  for (CLI::App* c : {upload, list, get, del}) c->add_option("--tenant", f->tenant, "admin keys: another tenant");

  commands->push_back({upload, [f, &g](Client& client) {
    PromptUpload u;
    grpc::Status s = ReadPromptUpload(f->path, f->name, f->format, &u);
    if (!s.ok()) return PrintStatus(s);
    u.tenant = f->tenant;
    auto r = client.UploadPrompt(u, [&](size_t sent, size_t total) {
      if (!g.json) std::fprintf(stderr, "\ruploading %s: %zu/%zu bytes", f->path.c_str(), sent, total);
    });
    if (!g.json) std::fprintf(stderr, "\n");
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) PrintJson(r.value);
    else std::printf("stored %s@%lld: [%lld, %lld] %s\n  %s\n", r.value.name().c_str(), (long long)r.value.version(),
                     (long long)r.value.rows(), (long long)r.value.dim(), r.value.checksum_sha256().c_str(), r.value.note().c_str());
    return 0;
  }});
  commands->push_back({list, [f, &g](Client& client) {
    v1::ListPromptsRequest req;
    req.set_name_prefix(f->prefix);
    req.set_page_size(f->page_size);
    req.set_page_token(f->page_token);
    req.set_tenant(f->tenant);
    auto r = client.ListPrompts(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) return PrintJson(r.value), 0;
    for (const auto& p : r.value.prompts()) std::printf("%s@%lld\t[%lld, %lld]\t%lld bytes\n", p.name().c_str(), (long long)p.version(), (long long)p.rows(), (long long)p.dim(), (long long)p.bytes());
    if (!r.value.next_page_token().empty()) std::printf("next page: --page-token %s\n", r.value.next_page_token().c_str());
    return 0;
  }});
  commands->push_back({get, [f](Client& client) {
    v1::GetPromptRequest req;
    req.set_name(f->name);
    req.set_version(f->version);
    req.set_include_values(f->values);
    req.set_tenant(f->tenant);
    auto r = client.GetPrompt(req);
    if (!r.ok()) return PrintStatus(r.status);
    PrintJson(r.value);
    return 0;
  }});
  commands->push_back({del, [f, &g](Client& client) {
    v1::DeletePromptRequest req;
    req.set_name(f->name);
    req.set_version(f->version);
    req.set_tenant(f->tenant);
    auto r = client.DeletePrompt(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) PrintJson(r.value);
    else std::printf("deleted %lld version(s) of %s\n", (long long)r.value.deleted_versions(), f->name.c_str());
    return 0;
  }});
}

int RunGenerate(Client& client, const Globals& g, const InputFlags& in, const DecodingFlags& dec,
                const std::string& prompt_ref, bool stream) {
  v1::GenerateRequest req;
  if (!in.Fill(req.mutable_inputs())) return 2;
  dec.Fill(req.mutable_parameters());
  if (!prompt_ref.empty()) *req.mutable_prompt() = ParsePromptRef(prompt_ref);
  if (stream) {
    grpc::Status s = client.GenerateStream(req, [&](const v1::GenerateStreamResponse& m) {
      if (g.json) {
        PrintJson(m);
        std::printf("\n");
      } else if (m.has_final()) {
        std::printf("\n");
        PrintGeneration(m.final());
      } else {
        std::printf("%s", m.text_delta().c_str());  // the text as it grows
      }
      std::fflush(stdout);
    });
    return s.ok() ? 0 : PrintStatus(s);
  }
  auto r = client.Generate(req);
  if (!r.ok()) return PrintStatus(r.status);
  if (g.json) PrintJson(r.value);
  else for (const auto& res : r.value.results()) PrintGeneration(res);
  return 0;
}

void AddInferenceCommands(CLI::App* app, const Globals& g, std::vector<Command>* commands) {
  struct Flags {
    InputFlags in;
    DecodingFlags dec;
    std::string prompt_ref;
    std::vector<std::string> prompt_refs, target_texts, target_ids;
    bool stream = false;
    int top_k = 5, requests = 100, concurrency = 8;
    bool AddTargets(google::protobuf::RepeatedPtrField<v1::Input>* targets) const {
      for (const auto& t : target_texts) targets->Add()->set_text(t);
      for (const auto& t : target_ids) {
        if (!ParseIds(t, targets->Add()->mutable_ids())) return false;
      }
      return true;
    }
  };
  auto f = std::make_shared<Flags>();
  auto* gen = app->add_subcommand("generate", "generate text for one or more inputs");
  f->in.Add(gen);
  f->dec.Add(gen);
  gen->add_option("--prompt", f->prompt_ref, "soft prompt NAME or NAME@VERSION");
  gen->add_flag("--stream", f->stream, "print the text as it is produced");
  commands->push_back({gen, [f, &g](Client& c) { return RunGenerate(c, g, f->in, f->dec, f->prompt_ref, f->stream); }});

  auto* score = app->add_subcommand("score", "log-likelihood of candidate targets");
  f->in.Add(score, "input text");
  score->add_option("--prompt", f->prompt_ref, "soft prompt NAME[@VERSION]");
  score->add_option("--target", f->target_texts, "candidate text, eos appended (repeatable)");
  score->add_option("--target-ids", f->target_ids, "candidate ids as given, e.g. 5,6,1 (repeatable)");
  commands->push_back({score, [f, &g](Client& client) {
    v1::ScoreRequest req;
    google::protobuf::RepeatedPtrField<v1::Input> inputs;
    if (!f->in.Fill(&inputs) || !f->AddTargets(req.mutable_targets())) return 2;
    *req.mutable_input() = inputs[0];
    if (!f->prompt_ref.empty()) *req.mutable_prompt() = ParsePromptRef(f->prompt_ref);
    auto r = client.Score(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) return PrintJson(r.value), 0;
    for (int i = 0; i < r.value.scores_size(); ++i) std::printf("%s target %d: %.4f\n", i == r.value.best() ? "*" : " ", i, r.value.scores(i).total_logprob());
    return 0;
  }});

  auto* ens = app->add_subcommand("ensemble", "one input, several prompts: majority vote or summed scores");
  f->in.Add(ens, "input text");
  f->dec.Add(ens);
  ens->add_option("--prompt", f->prompt_refs, "soft prompt NAME[@VERSION] (repeat for each member)")->required();
  ens->add_option("--target", f->target_texts, "score these candidates instead of generating (repeatable)");
  commands->push_back({ens, [f, &g](Client& client) {
    v1::EnsembleRequest req;
    google::protobuf::RepeatedPtrField<v1::Input> inputs;
    if (!f->in.Fill(&inputs) || !f->AddTargets(req.mutable_targets())) return 2;
    *req.mutable_input() = inputs[0];
    for (const auto& p : f->prompt_refs) *req.add_prompts() = ParsePromptRef(p);
    f->dec.Fill(req.mutable_parameters());
    auto r = client.Ensemble(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) return PrintJson(r.value), 0;
    if (r.value.members_size() > 0) {
      std::printf("winner: prompt %d with %d of %d votes\n", r.value.winner(), r.value.votes(), r.value.members_size());
      PrintGeneration(r.value.result());
      return 0;
    }
    for (int i = 0; i < r.value.summed_logprobs_size(); ++i) std::printf("%s target %d: %.4f\n", i == r.value.best() ? "*" : " ", i, r.value.summed_logprobs(i));
    return 0;
  }});

  auto* explain = app->add_subcommand("explain", "nearest vocabulary tokens of each prompt position");
  explain->add_option("--prompt", f->prompt_ref, "soft prompt NAME[@VERSION]")->required();
  explain->add_option("--top-k", f->top_k, "neighbours per position")->capture_default_str();
  commands->push_back({explain, [f, &g](Client& client) {
    v1::ExplainRequest req;
    *req.mutable_prompt() = ParsePromptRef(f->prompt_ref);
    req.set_top_k(f->top_k);
    auto r = client.Explain(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) return PrintJson(r.value), 0;
    for (int i = 0; i < r.value.positions_size(); ++i) {
      std::printf("position %d:", i);
      for (const auto& n : r.value.positions(i).neighbors()) std::printf("  %s(%lld) %.3f", n.piece().c_str(), (long long)n.token_id(), n.similarity());
      std::printf("\n");
    }
    return 0;
  }});

  auto* bench = app->add_subcommand("bench", "load generator against a running server");
  f->in.Add(bench);
  f->dec.Add(bench);
  bench->add_option("--prompt", f->prompt_refs, "prompts to rotate through (repeatable)");
  bench->add_option("--requests", f->requests, "requests to send")->capture_default_str();
  bench->add_option("--concurrency", f->concurrency, "requests in flight")->capture_default_str();
  commands->push_back({bench, [f, &g](Client& c) { return Bench(c, f->in, f->dec, f->prompt_refs, f->requests, f->concurrency, g.json); }});
}

// A new API key (32 random bytes, base64url) and the SHA-256 digest the server is configured
// with: the key goes to the tenant, the digest into the tenants file.
int KeyGen(const std::string& tenant) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return std::fprintf(stderr, "softserve: no randomness available\n"), 1;
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string key = "ss-";
  for (size_t i = 0; i < sizeof(raw); i += 3) {
    const uint32_t v = (uint32_t{raw[i]} << 16) | (i + 1 < sizeof(raw) ? uint32_t{raw[i + 1]} << 8 : 0) |
                       (i + 2 < sizeof(raw) ? uint32_t{raw[i + 2]} : 0);
    const size_t chars = i + 2 < sizeof(raw) ? 4 : i + 1 < sizeof(raw) ? 3 : 2;
    for (size_t c = 0; c < chars; ++c) key += kAlphabet[(v >> (18 - 6 * c)) & 63];
  }
  const std::string hex = HexSha256(key);
  std::printf("key:            %s\napi_key_sha256: %s\ntenants.json:   {\"name\": \"%s\", \"api_key_sha256\": \"%s\"}\n",
              key.c_str(), hex.c_str(), tenant.c_str(), hex.c_str());
  std::fprintf(stderr, "give the key to the tenant (it is shown once); the server keeps only the digest\n");
  return 0;
}

int Main(int argc, char** argv) {
  Globals g;
  if (const char* key = std::getenv("SOFTSERVE_API_KEY")) g.options.api_key = key;
  if (const char* server = std::getenv("SOFTSERVE_SERVER")) g.options.target = server;
  CLI::App app{"softserve: command-line client for the softserve gRPC server"};
  app.require_subcommand(1);
  app.add_option("--server", g.options.target, "server address (env SOFTSERVE_SERVER)")->capture_default_str();
  app.add_option("--api-key", g.options.api_key, "API key (env SOFTSERVE_API_KEY)");
  app.add_option("--tls-ca", g.options.tls_root_ca_file, "PEM CA: connect with TLS");
  app.add_option("--tls-cert", g.options.tls_client_cert_file, "PEM client certificate (mTLS)");
  app.add_option("--tls-key", g.options.tls_client_key_file, "PEM client key (mTLS)");
  app.add_option("--timeout", g.timeout_s, "seconds per call")->capture_default_str();
  app.add_flag("--json", g.json, "print responses as JSON");
  app.add_option("--request-id", g.options.request_id,
                 "x-request-id of the call (name it to `softserve cancel` a generation from elsewhere)");
  std::vector<Command> commands;
  AddPromptCommands(&app, g, &commands);
  AddInferenceCommands(&app, g, &commands);
  AddTrainingCommands(&app, g, &commands);
  auto* model = app.add_subcommand("model", "model, device and limits");
  commands.push_back({model, [](Client& client) {
    auto r = client.GetModelInfo();
    if (!r.ok()) return PrintStatus(r.status);
    return PrintJson(r.value), 0;
  }});
  std::string service, tenant = "NAME", cancel_id;
  auto* cancel = app.add_subcommand("cancel", "end your generation with this request id early (it returns what it has)");
  cancel->add_option("request_id", cancel_id, "the x-request-id the generation was called with")->required();
  commands.push_back({cancel, [&cancel_id, &g](Client& client) {
    v1::CancelGenerationRequest req;
    req.set_request_id(cancel_id);
    auto r = client.CancelGeneration(req);
    if (!r.ok()) return PrintStatus(r.status);
    if (g.json) PrintJson(r.value);
    else std::printf("cancelled %lld call(s) with request id %s\n", (long long)r.value.calls(), cancel_id.c_str());
    return 0;
  }});
  auto* health = app.add_subcommand("health", "grpc.health.v1 check (exit 0 only when SERVING)");
  health->add_option("--service", service, "\"\" = readiness, \"liveness\" = liveness");
  commands.push_back({health, [&service](Client& client) {
    auto r = client.Health(service);
    if (!r.ok()) return PrintStatus(r.status);
    std::printf("%s\n", ::grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.value.status()).c_str());
    return r.value.status() == ::grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
  }});
  auto* keygen = app.add_subcommand("keygen", "make a new API key and the digest for the server's tenants file");
  keygen->add_option("--tenant", tenant, "tenant name for the printed tenants.json entry");
  commands.push_back({keygen, nullptr, [&tenant] { return KeyGen(tenant); }});

  CLI11_PARSE(app, argc, argv);
  g.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(g.timeout_s * 1000));
  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    if (c.run_offline) return c.run_offline();
    auto connected = Client::Connect(g.options);
    if (!connected.ok()) return PrintStatus(connected.status);
    return c.run(*connected.value);
  }
  return 2;
}

}  // namespace
}  // namespace softserve::client

int main(int argc, char** argv) { return softserve::client::Main(argc, argv); }
