// softserve-soak: mixed traffic from several tenants against a running server (loopback), for a
// bounded time, with the server's resident memory sampled every --sample-seconds. Tenants (keys
// "soak-<tenant>-key", written into the server's tenants file by scripts/soak.sh):
//   flood     --flood-threads callers: beam 4-16, inputs up to 200 ids, fan-out of 8 inputs,
//             up to 64 new tokens; RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are expected;
//   quiet     one caller: short greedy generations and scores with a stored prompt; must all
//             succeed; its latency is reported;
//   bad       malformed requests (ids outside the vocabulary, too many beams, an unknown prompt,
//             a version without a name, no inputs, a junk upload, a wrong key): each must get
//             its precise status;
//   cancel    streams cancelled after a few tokens and calls whose deadline passes;
//   uploader  upload a prompt, generate with it, delete it, over and over.
// Exit 0 when no call got a status outside its expected set and the RSS stayed flat (the largest
// of the last three samples within --rss-growth-percent of the sample after --warmup-seconds).
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/softserve_client.h"
#include "core/model/safetensors.h"
#include "tools/flags.h"

namespace softserve::tools {
namespace {

namespace v1 = ::softserve::v1;
using Clock = std::chrono::steady_clock;
using Code = grpc::StatusCode;

struct SoakOptions {
  std::string target = "127.0.0.1:50051";
  int64_t server_pid = 0;
  double minutes = 30;
  double sample_seconds = 30;
  double warmup_seconds = 90;
  double rss_growth_percent = 10;
  int64_t flood_threads = 6;
  int64_t vocab = 256;
  int64_t dim = 64;
};

// Every call's status, by operation, against the statuses that operation may get.
class Tally {
 public:
  void Expect(const std::string& op, std::set<Code> codes) { expected_[op] = std::move(codes); }
  void Record(const std::string& op, const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[op][s.error_code()];
    if (expected_.at(op).count(s.error_code())) return;
    if (++unexpected_ <= 20) {
      std::fprintf(stderr, "UNEXPECTED %s: code %d: %s\n", op.c_str(), s.error_code(), s.error_message().c_str());
    }
  }
  void Latency(double ms) {
    std::lock_guard<std::mutex> lock(mu_);
    latencies_.push_back(ms);
  }
  // Calls so far: ok, expected rejections, unexpected; and the quiet tenant's p50/p99 since the
  // last report.
  std::string Report() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t ok = 0, rejected = 0;
    for (const auto& [op, codes] : counts_) {
      for (const auto& [code, n] : codes) (code == Code::OK ? ok : rejected) += n;
    }
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) { return latencies_.empty() ? 0.0 : latencies_[size_t(p * (latencies_.size() - 1))]; };
    char line[256];
    std::snprintf(line, sizeof(line), "calls_ok=%lld rejected=%lld unexpected=%lld quiet_p50_ms=%.1f quiet_p99_ms=%.1f",
                  static_cast<long long>(ok), static_cast<long long>(rejected - unexpected_),
                  static_cast<long long>(unexpected_), pct(0.5), pct(0.99));
    latencies_.clear();
    return line;
  }
  std::string Breakdown() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [op, codes] : counts_) {
      out += "  " + op + ":";
      for (const auto& [code, n] : codes) out += " code" + std::to_string(int(code)) + "=" + std::to_string(n);
      out += "\n";
    }
    return out;
  }
  int64_t unexpected() {
    std::lock_guard<std::mutex> lock(mu_);
    return unexpected_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::set<Code>> expected_;
  std::map<std::string, std::map<Code, int64_t>> counts_;
  std::vector<double> latencies_;
  int64_t unexpected_ = 0;
};

struct World {
  SoakOptions options;
  Tally tally;
  Clock::time_point end;
  bool Running() const { return Clock::now() < end; }
  std::shared_ptr<client::Client> ClientFor(const std::string& tenant, int timeout_ms = 30000) const {
    client::ClientOptions o;
    o.target = options.target;
    o.api_key = "soak-" + tenant + "-key";
    o.timeout = std::chrono::milliseconds(timeout_ms);
    o.max_attempts = 1;  // a soak counts every status the server gives
    return client::Client::Connect(o).value;
  }
};

v1::GenerateRequest Gen(std::mt19937_64& rng, const World& w, int inputs, int length, int new_tokens, int beams) {
  v1::GenerateRequest r;
  for (int i = 0; i < inputs; ++i) {
    auto* ids = r.add_inputs()->mutable_ids();
    for (int t = 0; t < length - 1; ++t) ids->add_ids(2 + int64_t(rng() % uint64_t(w.options.vocab - 2)));
    ids->add_ids(1);
  }
  auto* p = r.mutable_parameters();
  p->set_max_new_tokens(new_tokens);
  if (beams > 1) {
    p->set_mode(v1::DECODING_MODE_BEAM);
    p->set_num_beams(beams);
  }
  return r;
}

std::string PromptBytes(std::mt19937_64& rng, int64_t rows, int64_t dim) {
  std::normal_distribution<float> normal(0, 0.5f);
  std::vector<float> values(size_t(rows * dim));
  for (float& v : values) v = normal(rng);
  core::TensorToWrite t{"prompt", core::SafetensorsDtype::kF32, {rows, dim},
                        std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4)};
  return core::SerializeSafetensors({t}, {}).value();
}

void Flood(World* w, uint64_t seed) {
  auto c = w->ClientFor("flood");
  std::mt19937_64 rng(seed);
  while (w->Running()) {
    const int kind = int(rng() % 3);
    v1::GenerateRequest r = kind == 0   ? Gen(rng, *w, 1, 20, 64, 4 << (rng() % 3))  // beam 4-16
                            : kind == 1 ? Gen(rng, *w, 1, 200, 32, 1)              // long input
                                        : Gen(rng, *w, 8, 30, 16, 1);              // fan-out
    w->tally.Record("flood_generate", c->Generate(r).status);
  }
}

void Quiet(World* w) {
  auto c = w->ClientFor("quiet");
  std::mt19937_64 rng(7);
  client::PromptUpload upload{"quiet-task", v1::PROMPT_FORMAT_RAW, PromptBytes(rng, 8, w->options.dim)};
  w->tally.Record("quiet_upload", c->UploadPrompt(upload).status);
  for (int i = 0; w->Running(); ++i) {
    v1::GenerateRequest r = Gen(rng, *w, 1, 10, 8, 1);
    if (i % 2) r.mutable_prompt()->set_name("quiet-task");
    const auto start = Clock::now();
    w->tally.Record("quiet_generate", c->Generate(r).status);
    w->tally.Latency(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (i % 5 == 0) {
      v1::ScoreRequest s;
      *s.mutable_input() = r.inputs(0);
      s.mutable_prompt()->set_name("quiet-task");
      for (int t = 0; t < 3; ++t) *s.add_targets() = Gen(rng, *w, 1, 6, 1, 1).inputs(0);
      w->tally.Record("quiet_score", c->Score(s).status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Bad(World* w) {
  auto c = w->ClientFor("bad");
  auto stranger = w->ClientFor("nobody");
  std::mt19937_64 rng(11);
  for (int i = 0; w->Running(); ++i) {
    v1::GenerateRequest r = Gen(rng, *w, 1, 5, 4, 1);
    switch (i % 7) {
      case 0: r.mutable_inputs(0)->mutable_ids()->set_ids(0, w->options.vocab + 5); break;
      case 1: r.mutable_parameters()->set_mode(v1::DECODING_MODE_BEAM), r.mutable_parameters()->set_num_beams(99); break;
      case 2: r.mutable_prompt()->set_name("no-such-prompt"); break;
      case 3: r.mutable_prompt()->set_version(3); break;
      case 4: r.clear_inputs(); break;
      case 5: {
        client::PromptUpload junk{"junk", v1::PROMPT_FORMAT_RAW, std::string(4096, 'x')};
        w->tally.Record("bad_upload", c->UploadPrompt(junk).status);
        continue;
      }
      default: w->tally.Record("bad_key", stranger->Generate(r).status); continue;
    }
    w->tally.Record(i % 7 == 2 ? "bad_prompt" : "bad_request", c->Generate(r).status);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Cancel(World* w) {
  auto c = w->ClientFor("cancel");
  auto hasty = w->ClientFor("cancel", 50);
  std::mt19937_64 rng(13);
  while (w->Running()) {
    grpc::ClientContext context;
    int messages = 0;
    v1::GenerateRequest r = Gen(rng, *w, 1, 10, 500, 1);
    r.mutable_parameters()->set_min_new_tokens(500);
    w->tally.Record("cancel_stream", c->GenerateStream(r, [&](const v1::GenerateStreamResponse&) {
      if (++messages == 3) context.TryCancel();
    }, &context));
    w->tally.Record("deadline_generate", hasty->Generate(r).status);
  }
}

void Uploader(World* w) {
  auto c = w->ClientFor("uploader");
  std::mt19937_64 rng(17);
  for (int i = 0; w->Running(); ++i) {
    const std::string name = "task-" + std::to_string(i % 5);
    client::PromptUpload upload{name, v1::PROMPT_FORMAT_RAW, PromptBytes(rng, 4 + int64_t(rng() % 17), w->options.dim)};
    auto stored = c->UploadPrompt(upload);
    w->tally.Record("upload", stored.status);
    if (!stored.ok()) continue;
    v1::GenerateRequest r = Gen(rng, *w, 1, 10, 8, 1);
    r.mutable_prompt()->set_name(name);
    r.mutable_prompt()->set_version(stored.value.version());
    w->tally.Record("uploaded_generate", c->Generate(r).status);
    v1::DeletePromptRequest d;
    d.set_name(name);
    w->tally.Record("delete", c->DeletePrompt(d).status);
  }
}

int64_t RssKb(int64_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

void DeclareExpectations(Tally& t) {
  const std::set<Code> ok{Code::OK};
  t.Expect("flood_generate", {Code::OK, Code::RESOURCE_EXHAUSTED, Code::DEADLINE_EXCEEDED});
  t.Expect("quiet_upload", ok);
  t.Expect("quiet_generate", ok);
  t.Expect("quiet_score", ok);
  t.Expect("bad_request", {Code::INVALID_ARGUMENT});
  t.Expect("bad_prompt", {Code::NOT_FOUND});
  t.Expect("bad_upload", {Code::INVALID_ARGUMENT});
  t.Expect("bad_key", {Code::UNAUTHENTICATED});
  t.Expect("cancel_stream", {Code::CANCELLED});
  t.Expect("deadline_generate", {Code::DEADLINE_EXCEEDED});
  t.Expect("upload", ok);
  t.Expect("uploaded_generate", ok);
  t.Expect("delete", ok);
}

// Samples RSS until the end; returns whether it stayed flat.
bool Monitor(World* w) {
  std::vector<std::pair<double, int64_t>> samples;
  const auto start = Clock::now();
  while (true) {
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    samples.emplace_back(t, RssKb(w->options.server_pid));
    std::printf("t=%5.0fs rss_kb=%lld %s\n", t, static_cast<long long>(samples.back().second), w->tally.Report().c_str());
    std::fflush(stdout);
    if (!w->Running()) break;
    std::this_thread::sleep_until(std::min(w->end, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(w->options.sample_seconds))));
  }
  auto base = std::find_if(samples.begin(), samples.end(), [&](auto& s) { return s.first >= w->options.warmup_seconds; });
  if (base == samples.end() || samples.size() < 4) {
    std::printf("too short to judge RSS (need samples past --warmup-seconds)\n");
    return false;
  }
  int64_t last = 0;
  for (size_t i = samples.size() - 3; i < samples.size(); ++i) last = std::max(last, samples[i].second);
  const double growth = 100.0 * double(last - base->second) / double(base->second);
  std::printf("rss after warm-up %lld kB, largest of the last three samples %lld kB: %+.1f%% (limit %.0f%%)\n",
              static_cast<long long>(base->second), static_cast<long long>(last), growth, w->options.rss_growth_percent);
  return growth <= w->options.rss_growth_percent;
}

int Main(int argc, char** argv) {
  World w;
  SoakOptions& o = w.options;
  FlagParser flags("softserve-soak", "Mixed multi-tenant traffic against a running server; RSS must stay flat.");
  flags.AddString("target", &o.target, "server address (loopback)");
  flags.AddInt("server-pid", &o.server_pid, "the server's pid, for its RSS");
  flags.AddDouble("minutes", &o.minutes, "how long to run");
  flags.AddDouble("sample-seconds", &o.sample_seconds, "RSS sampling period");
  flags.AddDouble("warmup-seconds", &o.warmup_seconds, "the RSS baseline is the first sample after this");
  flags.AddDouble("rss-growth-percent", &o.rss_growth_percent, "allowed RSS growth over the baseline");
  flags.AddInt("flood-threads", &o.flood_threads, "concurrent callers of the flooding tenant");
  flags.AddInt("vocab", &o.vocab, "the model's vocabulary size");
  flags.AddInt("dim", &o.dim, "the model's d_model (prompt width)");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  if (o.server_pid <= 0) {
    std::fprintf(stderr, "softserve-soak: --server-pid is required\n");
    return 2;
  }
  DeclareExpectations(w.tally);
  w.end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.minutes * 60));
  std::vector<std::thread> actors;
  for (int64_t i = 0; i < o.flood_threads; ++i) actors.emplace_back(Flood, &w, 100 + i);
  actors.emplace_back(Quiet, &w);
  actors.emplace_back(Bad, &w);
  actors.emplace_back(Cancel, &w);
  actors.emplace_back(Uploader, &w);
  const bool flat = Monitor(&w);
  for (auto& t : actors) t.join();
  std::printf("final: %s\nby operation (gRPC codes):\n%s", w.tally.Report().c_str(), w.tally.Breakdown().c_str());
  const int64_t unexpected = w.tally.unexpected();
  std::printf("verdict: %s (unexpected statuses %lld, RSS %s)\n", unexpected == 0 && flat ? "PASS" : "FAIL",
              static_cast<long long>(unexpected), flat ? "flat" : "grew");
  return unexpected == 0 && flat ? 0 : 1;
}

}  // namespace
}  // namespace softserve::tools

int main(int argc, char** argv) { return softserve::tools::Main(argc, argv); }
