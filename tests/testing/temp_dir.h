// A directory under /tmp that exists for the lifetime of the object (removed with everything
// in it on destruction). For tests that need real files on disk.
#ifndef SOFTSERVE_TESTS_TESTING_TEMP_DIR_H_
#define SOFTSERVE_TESTS_TESTING_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace softserve::testing {

class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix = "softserve_test") {
    std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~ScopedTempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace softserve::testing

#endif  // SOFTSERVE_TESTS_TESTING_TEMP_DIR_H_
