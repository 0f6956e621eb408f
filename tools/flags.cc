#include "tools/flags.h"

#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace softserve::tools {

using core::InvalidArgumentError;
using core::OkStatus;
using core::Status;

FlagParser::FlagParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagParser::AddString(const std::string& name, std::string* out, const std::string& help) {
  order_.push_back(name);
  flags_[name] = {Kind::kString, out, help, out->empty() ? "" : "\"" + *out + "\""};
}
void FlagParser::AddInt(const std::string& name, int64_t* out, const std::string& help) {
  order_.push_back(name);
  flags_[name] = {Kind::kInt, out, help, std::to_string(*out)};
}
void FlagParser::AddDouble(const std::string& name, double* out, const std::string& help) {
  order_.push_back(name);
  std::ostringstream s;
  s << *out;
  flags_[name] = {Kind::kDouble, out, help, s.str()};
}
void FlagParser::AddBool(const std::string& name, bool* out, const std::string& help) {
  order_.push_back(name);
  flags_[name] = {Kind::kBool, out, help, *out ? "true" : "false"};
}

Status FlagParser::Assign(const std::string& name, Flag& flag, const std::string& value) {
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.out) = value;
      return OkStatus();
    case Kind::kInt: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || errno != 0 || *end != '\0') {
        return InvalidArgumentError("--" + name + " needs an integer, got '" + value + "'");
      }
      *static_cast<int64_t*>(flag.out) = v;
      return OkStatus();
    }
    case Kind::kDouble: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(value.c_str(), &end);
      if (value.empty() || errno != 0 || *end != '\0' || !std::isfinite(v)) {
        return InvalidArgumentError("--" + name + " needs a number, got '" + value + "'");
      }
      *static_cast<double*>(flag.out) = v;
      return OkStatus();
    }
    case Kind::kBool:
      if (value == "true" || value == "1") *static_cast<bool*>(flag.out) = true;
      else if (value == "false" || value == "0") *static_cast<bool*>(flag.out) = false;
      else return InvalidArgumentError("--" + name + " needs true or false, got '" + value + "'");
      return OkStatus();
  }
  return OkStatus();
}

int FlagParser::ParseOrExitCode(int argc, char** argv) {
  bool help = false;
  if (Status s = Parse(argc, argv, &help); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), s.message().c_str());
    return 2;
  }
  if (help) {
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  return -1;
}

Status FlagParser::Parse(int argc, char** argv, bool* help_requested) {
  *help_requested = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help_requested = true;
      return OkStatus();
    }
    if (arg.rfind("--", 0) != 0) {
      return InvalidArgumentError("unexpected argument '" + arg + "' (flags start with --)");
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) return InvalidArgumentError("unknown flag --" + name + " (see --help)");
    if (!has_value) {
      if (it->second.kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return InvalidArgumentError("--" + name + " needs a value");
      }
    }
    SOFTSERVE_RETURN_IF_ERROR(Assign(name, it->second, value));
    set_.insert(name);
  }
  return OkStatus();
}

std::string FlagParser::Usage() const {
  std::string out = "Usage: " + program_ + " [flags]\n\n" + summary_ + "\n\nFlags:\n";
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    out += "  --" + name;
    if (f.kind != Kind::kBool) out += " VALUE";
    out += "\n      " + f.help;
    if (!f.default_text.empty()) out += " (default: " + f.default_text + ")";
    out += "\n";
  }
  return out;
}

core::StatusOr<std::vector<int64_t>> ParseIdList(const std::string& text) {
  std::vector<int64_t> ids;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) return InvalidArgumentError("empty id in list '" + text + "'");
    item = item.substr(b, e - b + 1);
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || v < 0) {
      return InvalidArgumentError("'" + item + "' is not a non-negative token id");
    }
    ids.push_back(v);
  }
  if (ids.empty()) return InvalidArgumentError("empty id list");
  return ids;
}

core::StatusOr<std::vector<std::vector<int64_t>>> ParseIdLists(const std::string& text) {
  std::vector<std::vector<int64_t>> lists;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ';')) {
    SOFTSERVE_ASSIGN_OR_RETURN(auto ids, ParseIdList(item));
    lists.push_back(std::move(ids));
  }
  if (lists.empty()) return InvalidArgumentError("no id lists in '" + text + "'");
  return lists;
}

}  // namespace softserve::tools
