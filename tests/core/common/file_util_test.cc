#include "core/common/file_util.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"
#include <stdlib.h>
#include <sys/stat.h>
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

TEST_F(FileUtilTest, FailedWriteLeavesOldContents) {
  const std::string path = JoinPath(dir_, "f.bin");
  ASSERT_TRUE(WriteFileDurably(path, "old").ok());
  // A read-only directory makes the temp file impossible (unless running as root).
  ::chmod(dir_.c_str(), 0500);
  Status s = WriteFileDurably(path, "new");
  ::chmod(dir_.c_str(), 0700);
  if (::geteuid() != 0) EXPECT_FALSE(s.ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  if (!s.ok()) EXPECT_EQ(*read, "old");
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
