// softserve-store-bench: the shared PostgreSQL prompt store as replicas see it. Two replicas
// (each a PgPromptStore, a PromptRegistry and a PgChangeFollower, as the server builds them) in
// one process against the PostgreSQL at --store-url:
//   propagation  an upload through replica a until replica b serves it, and a delete through b
//                until a refuses it (p50/p99/max over --uploads rounds; polled every 0.2 ms);
//   miss         reading one prompt from the store, and a registry Get of a prompt whose values
//                are not in memory (a cold miss through PromptRegistry), p50/p99;
//   cold start   a new replica's Load of a registry of --registry prompts (t5-small width):
//                descriptions only, values are read on first use.
// scripts/store-bench.sh starts a throwaway PostgreSQL and runs this.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/percentile.h"
#include "store/pg_change_follower.h"
#include "store/pg_prompt_store.h"
#include "tools/flags.h"

namespace softserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

core::NewPrompt Matrix(int64_t rows, int64_t dim, float base) {
  core::NewPrompt p;
  p.rows = rows;
  p.dim = dim;
  p.values.assign(static_cast<size_t>(rows * dim), base);
  return p;
}

struct Replica {
  std::unique_ptr<store::PgPromptStore> store;
  std::unique_ptr<core::PromptRegistry> registry;
  std::unique_ptr<store::PgChangeFollower> follower;
  ~Replica() { follower.reset(); }
};

std::unique_ptr<Replica> Open(const std::string& url, bool follow,
                              int64_t cache_bytes = core::PromptRegistry::kDefaultValueCacheBytes) {
  auto r = std::make_unique<Replica>();
  auto s = store::PgPromptStore::Open(url);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  r->store = std::move(s).value();
  r->registry = std::make_unique<core::PromptRegistry>(r->store.get(), cache_bytes);
  if (auto l = r->registry->Load(); !l.ok()) {
    std::fprintf(stderr, "%s\n", l.status().ToString().c_str());
    std::exit(1);
  }
  if (follow) r->follower = std::make_unique<store::PgChangeFollower>(url, r->store.get(), r->registry.get());
  return r;
}

template <typename Pred>
double WaitMs(Pred pred) {
  const auto t0 = Clock::now();
  while (!pred()) {
    if (Clock::now() - t0 > std::chrono::seconds(10)) return -1;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return Ms(Clock::now() - t0);
}

void Report(const char* what, const std::vector<double>& ms) {
  std::printf("| %s | %zu | %.2f | %.2f | %.2f |\n", what, ms.size(), Percentile(ms, 0.5), Percentile(ms, 0.99),
              ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()));
}

int Main(int argc, char** argv) {
  std::string url;
  int64_t uploads = 200, registry_size = 10000, rows = 20, dim = 512;
  tools::FlagParser flags("softserve-store-bench", "Propagation, cache-miss and cold-start figures of the PostgreSQL store.");
  flags.AddString("store-url", &url, "PostgreSQL URL (an empty database is best)");
  flags.AddInt("uploads", &uploads, "propagation rounds");
  flags.AddInt("registry", &registry_size, "prompts in the cold-start registry");
  flags.AddInt("rows", &rows, "prompt rows");
  flags.AddInt("dim", &dim, "prompt width (512: t5-small)");
  if (int code = flags.ParseOrExitCode(argc, argv); code >= 0) return code;
  if (url.empty()) return std::fprintf(stderr, "--store-url is required\n"), 2;
  auto a = Open(url, true), b = Open(url, true);

  std::vector<double> put_ms, delete_ms, miss_ms;
  for (int64_t i = 0; i < uploads; ++i) {
    const std::string name = "p" + std::to_string(i);
    auto created = a->registry->Create("bench", name, Matrix(rows, dim, static_cast<float>(i)));
    const auto committed = Clock::now();
    if (!created.ok()) return std::fprintf(stderr, "%s\n", created.status().ToString().c_str()), 1;
    WaitMs([&] { return b->registry->Get("bench", name).ok(); });
    put_ms.push_back(Ms(Clock::now() - committed));
    const auto t0 = Clock::now();
    auto read = b->store->Get(core::PromptKey{"bench", name, 0});
    miss_ms.push_back(Ms(Clock::now() - t0));
    if (!read.ok()) return std::fprintf(stderr, "%s\n", read.status().ToString().c_str()), 1;
    if (core::Status d = b->registry->Delete("bench", name); !d.ok()) return std::fprintf(stderr, "%s\n", d.ToString().c_str()), 1;
    const auto deleted = Clock::now();
    WaitMs([&] { return !a->registry->Get("bench", name).ok(); });
    delete_ms.push_back(Ms(Clock::now() - deleted));
  }
  // Cold misses through a registry that keeps no values: every Get reads the store.
  for (int64_t i = 0; i < uploads; ++i) {
    if (!a->store->Insert("bench", "cold" + std::to_string(i), Matrix(rows, dim, 1.f), {}).ok()) return 1;
  }
  auto cold = Open(url, false, /*cache_bytes=*/0);
  std::vector<double> cold_ms;
  for (int64_t i = 0; i < uploads; ++i) {
    const auto t0 = Clock::now();
    auto p = cold->registry->Get("bench", "cold" + std::to_string(i));
    cold_ms.push_back(Ms(Clock::now() - t0));
    if (!p.ok()) return std::fprintf(stderr, "%s\n", p.status().ToString().c_str()), 1;
  }
  std::printf("| measure | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
  Report("upload through a, served by b", put_ms);
  Report("delete through b, refused by a", delete_ms);
  Report("one prompt read from the store", miss_ms);
  Report("registry Get of a prompt not in memory (cold miss)", cold_ms);

  // Cold start: fill the store (straight through a's store, no follower work), then time a
  // fresh replica's Load.
  b.reset();
  a->follower.reset();
  const auto fill0 = Clock::now();
  for (int64_t i = 0; i < registry_size; ++i) {
    auto p = a->store->Insert("t" + std::to_string(i % 100), "n" + std::to_string(i), Matrix(rows, dim, 1.f), {});
    if (!p.ok()) return std::fprintf(stderr, "%s\n", p.status().ToString().c_str()), 1;
  }
  const double fill_s = Ms(Clock::now() - fill0) / 1e3;
  const auto load0 = Clock::now();
  auto c = Open(url, false);
  const double load_s = Ms(Clock::now() - load0) / 1e3;
  std::printf("\ncold start: a new replica loaded the descriptions of %lld prompts of %lldx%lld (%.0f MiB of "
              "values, read on first use) in %.2f s (filling them took %.1f s, %.2f ms per upload)\n",
              static_cast<long long>(c->registry->total_prompts()), static_cast<long long>(rows),
              static_cast<long long>(dim), c->registry->total_bytes() / 1048576.0, load_s, fill_s,
              1e3 * fill_s / static_cast<double>(registry_size));
  return 0;
}

}  // namespace
}  // namespace softserve::bench

int main(int argc, char** argv) { return softserve::bench::Main(argc, argv); }
