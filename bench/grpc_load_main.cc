// softserve-grpc-load: closed-loop gRPC load against a running server or load balancer, for
// figures end to end (client library, network, nginx, server, engine). --callers concurrent
// callers each send Generate requests one after another for --seconds: --input-tokens random ids
// (vocabulary --vocab), exactly --new-tokens greedy tokens, the prompt --prompt if given.
// Reports requests/s, generated tokens/s and latency p50/p99; any failed call is counted and
// makes the exit status 1. scripts/lb-bench.sh runs it through nginx with one and two replicas.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "bench/percentile.h"
#include "client/softserve_client.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

int Main(int argc, char** argv) {
  std::string target = "127.0.0.1:50051", key, prompt;
  int64_t callers = 8, seconds = 20, input_tokens = 64, new_tokens = 32, vocab = 32000;
  tools::FlagParser flags("softserve-grpc-load", "Closed-loop Generate load through the real client library.");
  flags.AddString("target", &target, "server or load balancer address");
  flags.AddString("api-key", &key, "API key");
  flags.AddString("prompt", &prompt, "soft prompt name (empty: none)");
  flags.AddInt("callers", &callers, "concurrent callers");
  flags.AddInt("seconds", &seconds, "how long to send");
  flags.AddInt("input-tokens", &input_tokens, "input ids per request (the last one eos)");
  flags.AddInt("new-tokens", &new_tokens, "tokens generated per request (min = max)");
  flags.AddInt("vocab", &vocab, "ids are drawn from [2, vocab)");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  client::ClientOptions o;
  o.target = target;
  o.api_key = key;
  o.max_attempts = 5;
  auto connected = client::Client::Connect(o);
  if (!connected.ok()) return std::fprintf(stderr, "%s\n", connected.status.error_message().c_str()), 1;
  std::shared_ptr<client::Client> c = connected.value;

  std::atomic<int64_t> failed{0};
  std::mutex mu;
  std::vector<double> latency_ms;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      std::uniform_int_distribution<int64_t> id(2, vocab - 1);
      std::vector<double> mine;
      while (Clock::now() < end) {
        v1::GenerateRequest req;
        auto* ids = req.add_inputs()->mutable_ids()->mutable_ids();
        for (int64_t i = 0; i + 1 < input_tokens; ++i) ids->Add(id(rng));
        ids->Add(1);
        if (!prompt.empty()) req.mutable_prompt()->set_name(prompt);
        req.mutable_parameters()->set_max_new_tokens(static_cast<int>(new_tokens));
        req.mutable_parameters()->set_min_new_tokens(static_cast<int>(new_tokens));
        const auto t0 = Clock::now();
        auto r = c->Generate(req);
        if (!r.ok()) {
          if (failed++ == 0) std::fprintf(stderr, "first failure: %s\n", r.status.error_message().c_str());
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::lock_guard<std::mutex> l(mu);
      latency_ms.insert(latency_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double n = static_cast<double>(latency_ms.size());
  std::printf("| %lld callers | %.1f requests/s | %.1f tokens/s | p50 %.0f ms | p99 %.0f ms | %lld failed |\n",
              static_cast<long long>(callers), n / static_cast<double>(seconds),
              n * static_cast<double>(new_tokens) / static_cast<double>(seconds), Percentile(latency_ms, 0.5),
              Percentile(latency_ms, 0.99), static_cast<long long>(failed.load()));
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
