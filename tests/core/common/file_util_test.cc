#include "core/common/file_util.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <unistd.h>

namespace softserve::core {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  testing::ScopedTempDir temp_{"softserve_file_test"};
  const std::string dir_ = temp_.path();
};

TEST_F(FileUtilTest, DurableWriteReplacesAtomically) {
  const std::string path = JoinPath(dir_, "f.bin");
  ASSERT_TRUE(WriteFileDurably(path, "old").ok());
  ASSERT_TRUE(WriteFileDurably(path, std::string("new\0data", 8)).ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, std::string("new\0data", 8));
  // No temp files left behind.
  auto names = ListDirectory(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f.bin"});
}

// A write that fails half-way (here: the file-size limit, which binds root as much as anyone,
// stops the temp file at 1 kB) leaves the old contents and no temp file behind.
TEST_F(FileUtilTest, FailedWriteLeavesOldContents) {
  const std::string path = JoinPath(dir_, "f.bin");
  ASSERT_TRUE(WriteFileDurably(path, "old").ok());
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit small = saved;
  small.rlim_cur = 1024;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status s = WriteFileDurably(path, std::string(64 * 1024, 'n'));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot write"), std::string::npos) << s.message();
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "old");
  auto names = ListDirectory(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"f.bin"});
}

TEST_F(FileUtilTest, MapsReadsAndReportsMissingFiles) {
  const std::string path = JoinPath(dir_, "m.bin");
  ASSERT_TRUE(WriteFileDurably(path, "mapped bytes").ok());
  auto m = MappedFile::Open(path);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*m)->data()), (*m)->size()), "mapped bytes");
  EXPECT_EQ(MappedFile::Open(JoinPath(dir_, "nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::Open(dir_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFileToString(path, 3).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileDurably(JoinPath(dir_, "empty"), "").ok());
  auto e = MappedFile::Open(JoinPath(dir_, "empty"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->size(), 0u);
}

TEST_F(FileUtilTest, DirectoriesAndRemoval) {
  const std::string nested = JoinPath(dir_, "a/b/c");
  ASSERT_TRUE(MakeDirectories(nested).ok());
  EXPECT_TRUE(IsDirectory(nested));
  ASSERT_TRUE(MakeDirectories(nested).ok());  // idempotent
  const std::string f = JoinPath(nested, "x");
  ASSERT_TRUE(WriteFileDurably(f, "1").ok());
  EXPECT_TRUE(RemoveFileDurably(f).ok());
  EXPECT_FALSE(PathExists(f));
  EXPECT_EQ(RemoveFileDurably(f).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace softserve::core
