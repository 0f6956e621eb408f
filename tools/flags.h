// A small command-line flag parser for softserve's programs (no dependency beyond the
// standard library, so the GPU build with libtorch alone has it too).
// Accepts --name value, --name=value and, for booleans, --name / --name=false.
// --help prints every flag with its default and help text.
#ifndef SOFTSERVE_TOOLS_FLAGS_H_
#define SOFTSERVE_TOOLS_FLAGS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/common/status.h"

namespace softserve::tools {

class FlagParser {
 public:
  FlagParser(std::string program, std::string summary);

  void AddString(const std::string& name, std::string* out, const std::string& help);
  void AddInt(const std::string& name, int64_t* out, const std::string& help);
  void AddDouble(const std::string& name, double* out, const std::string& help);
  void AddBool(const std::string& name, bool* out, const std::string& help);

  // Parses argv. Returns InvalidArgument naming the flag for unknown flags, missing or
  // malformed values, and positional arguments. Sets *help_requested on --help / -h.
  core::Status Parse(int argc, char** argv, bool* help_requested);
  // Parse for a program's main(): on --help prints Usage() to stdout and returns 0; on a bad
  // command line prints "<program>: <message>" (one line) to stderr and returns 2; otherwise
  // returns -1 and the program goes on.
  int ParseOrExitCode(int argc, char** argv);
  bool IsSet(const std::string& name) const { return set_.count(name) > 0; }
  std::string Usage() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    Kind kind;
    void* out;
    std::string help;
    std::string default_text;
  };
  core::Status Assign(const std::string& name, Flag& flag, const std::string& value);

  std::string program_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
  std::set<std::string> set_;
};

// Parses "3,4,5" into ids; InvalidArgument on anything but non-negative integers.
core::StatusOr<std::vector<int64_t>> ParseIdList(const std::string& text);
// Parses "1,2;3,4" into lists.
core::StatusOr<std::vector<std::vector<int64_t>>> ParseIdLists(const std::string& text);

}  // namespace softserve::tools

#endif  // SOFTSERVE_TOOLS_FLAGS_H_
