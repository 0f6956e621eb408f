// The store on real files: corrupt, truncated, torn and misplaced files are reported and never
// served, and a writer SIGKILLed at random points leaves exactly the acknowledged state (plus
// at most the one operation it was in the middle of).
#include "core/prompts/prompt_store.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <set>

#include "core/common/file_util.h"
#include "core/prompts/prompt_names.h"
#include "core/prompts/prompt_registry.h"

namespace softserve::core {
namespace {

NewPrompt Matrix(int64_t rows, float fill) {
  NewPrompt p;
  p.rows = rows;
  p.dim = 8;
  p.values.assign(rows * 8, fill);
  return p;
}

class PromptStoreTest : public ::testing::Test {
 protected:
  StoreLoadReport Load() {
    auto store = PromptStore::Open(dir_);
    EXPECT_TRUE(store.ok());
    auto report = (*store)->LoadAll();
    EXPECT_TRUE(report.ok());
    return std::move(report).value();
  }
  bool Reported(const StoreLoadReport& r, const std::string& needle) {
    for (const auto& [path, reason] : r.skipped) {
      if (path.find(needle) != std::string::npos || reason.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  testing::ScopedTempDir temp_{"softserve_store_test"};
  const std::string dir_ = temp_.path();
};

TEST_F(PromptStoreTest, CorruptTruncatedTornAndMisplacedFilesAreSkippedAndReported) {
  {
    auto store = PromptStore::Open(dir_);
    PromptRegistry reg(std::move(store).value());
    for (const char* n : {"good", "flipped", "short", "moved"}) ASSERT_TRUE(reg.Create("acme", n, Matrix(4, 1.5f)).ok());
  }
  auto store = PromptStore::Open(dir_).value();
  // Flip one tensor byte.
  const std::string flipped = store->PathOf({"acme", "flipped", 1});
  std::string bytes = ReadFileToString(flipped).value();
  bytes[bytes.size() - 3] ^= 0x40;
  ASSERT_TRUE(WriteFileDurably(flipped, bytes).ok());
  // Truncate.
  const std::string short_path = store->PathOf({"acme", "short", 1});
  std::string s = ReadFileToString(short_path).value();
  ASSERT_TRUE(WriteFileDurably(short_path, s.substr(0, s.size() / 2)).ok());
  // A torn temp file from a crashed write.
  const std::string torn = store->PathOf({"acme", "good", 2}) + ".tmp.123.0";
  ASSERT_TRUE(WriteFileDurably(torn, "partial").ok());
  // A valid record placed under another name's directory.
  ASSERT_TRUE(WriteFileDurably(store->PathOf({"acme", "good", 7}),
                               ReadFileToString(store->PathOf({"acme", "moved", 1})).value()).ok());
  // Junk at the top level.
  ASSERT_TRUE(WriteFileDurably(dir_ + "/README", "hello").ok());

  StoreLoadReport r = Load();
  ASSERT_EQ(r.prompts.size(), 2u);  // good@1 and moved@1
  std::set<std::string> names;
  for (const auto& p : r.prompts) names.insert(p->key().name);
  EXPECT_EQ(names, (std::set<std::string>{"good", "moved"}));
  EXPECT_TRUE(Reported(r, "checksum mismatch"));
  EXPECT_TRUE(Reported(r, HexEncode("short")));
  EXPECT_TRUE(Reported(r, "temp file"));
  EXPECT_TRUE(Reported(r, "does not match its location"));
  EXPECT_TRUE(Reported(r, "README"));
  EXPECT_FALSE(PathExists(torn));  // incomplete writes are cleaned up
}

TEST_F(PromptStoreTest, TenThousandPromptsLoadAtStartUp) {
  auto store = PromptStore::Open(dir_).value();
  const int kPrompts = 10000;
  for (int i = 0; i < kPrompts; ++i) {
    // Written without fsync to keep the test fast; durability is tested elsewhere.
    Prompt p(PromptKey{"t" + std::to_string(i % 50), "task-" + std::to_string(i), 1}, 20, 8,
             std::vector<float>(160, static_cast<float>(i)), PromptFormat::kRaw, 0);
    const std::string path = store->PathOf(p.key());
    ASSERT_TRUE(MakeDirectories(path.substr(0, path.find_last_of('/'))).ok());
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string rec = SerializePromptRecord(p);
    std::fwrite(rec.data(), 1, rec.size(), f);
    std::fclose(f);
  }
  PromptRegistry reg(std::move(store));
  auto report = reg.Load();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->skipped.empty());
  EXPECT_EQ(reg.total_prompts(), kPrompts);
  auto p = reg.Get("t7", "task-4257");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->values()[0], 4257.f);
  EXPECT_EQ(reg.List("t7", "task-", 1000, "")->prompts.size(), 200u);
}

// The child performs numbered operations (creates, and every fourth a delete of an earlier
// name) and acknowledges each on a pipe after it returns; the parent kills it with SIGKILL.
TEST_F(PromptStoreTest, KilledWriterLeavesTheAcknowledgedState) {
  std::mt19937 rng(20261122);
  for (int trial = 0; trial < 6; ++trial) {
    const std::string dir = dir_ + "/trial" + std::to_string(trial);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const int kill_after = 3 + static_cast<int>(rng() % 25);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto store = PromptStore::Open(dir);
      PromptRegistry reg(std::move(store).value());
      for (int op = 0;; ++op) {
        Status s = (op % 4 == 3) ? reg.Delete("acme", "p" + std::to_string(op - 3))
                                 : reg.Create("acme", "p" + std::to_string(op), Matrix(1 + op % 7, float(op))).status();
        if (!s.ok()) ::_exit(3);
        if (::write(fds[1], &op, sizeof(op)) != sizeof(op)) ::_exit(4);
      }
    }
    ::close(fds[1]);
    int acked = -1, op;
    while (acked + 1 < kill_after && ::read(fds[0], &op, sizeof(op)) == sizeof(op)) acked = op;
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
    // The writer may have completed (and acknowledged) more operations before the kill landed:
    // those acknowledgements are still in the pipe.
    while (::read(fds[0], &op, sizeof(op)) == sizeof(op)) acked = op;
    ::close(fds[0]);

    PromptRegistry reg(PromptStore::Open(dir).value());
    auto report = reg.Load();
    ASSERT_TRUE(report.ok());
    for (const auto& [path, reason] : report->skipped) {
      EXPECT_NE(reason.find("temp file"), std::string::npos) << path << ": " << reason;  // only torn temps
    }
    // The reloaded state is the model's state after the acknowledged operations, or after one
    // more (the operation in flight when the kill landed) — never anything in between.
    auto model_after = [](int ops) {
      std::set<int> live;
      for (int o = 0; o < ops; ++o) {
        if (o % 4 == 3) live.erase(o - 3);
        else live.insert(o);
      }
      return live;
    };
    std::set<int> actual;
    auto page = reg.List("acme", "", 1000, "");
    ASSERT_TRUE(page.ok());
    for (const PromptPtr& p : page->prompts) {
      const int o = std::stoi(p->key().name.substr(1));
      actual.insert(o);
      EXPECT_EQ(p->rows(), 1 + o % 7);  // complete and correct content
      EXPECT_EQ(p->values().back(), float(o));
    }
    EXPECT_TRUE(actual == model_after(acked + 1) || actual == model_after(acked + 2))
        << "trial " << trial << ": state matches neither the acknowledged nor the next operation";
  }
}

}  // namespace
}  // namespace softserve::core
