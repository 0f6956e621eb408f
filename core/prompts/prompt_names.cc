#include "core/prompts/prompt_names.h"

namespace softserve::core {
namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty()) return InvalidArgumentError(std::string(what) + " is empty");
  if (name.size() > kMaxNameLength) {
    return InvalidArgumentError(std::string(what) + " is " + std::to_string(name.size()) +
                                " characters; at most " + std::to_string(kMaxNameLength) + " allowed");
  }
  if (!IsAlnum(name[0])) {
    return InvalidArgumentError(std::string(what) + " must start with a letter or digit");
  }
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') {
      return InvalidArgumentError(std::string(what) + " may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return OkStatus();
}

std::string HexEncode(std::string_view s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool HexDecode(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = value(hex[i]), lo = value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace softserve::core
