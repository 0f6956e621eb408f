#include "core/common/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace softserve::core {

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}
JsonValue JsonValue::Number(double d) {
  JsonValue v;
  v.type_ = Type::kNumber;
  v.number_ = d;
  if (std::nearbyint(d) == d && std::fabs(d) < 9.2e18) {
    v.is_int_ = true;
    v.int_ = static_cast<int64_t>(d);
  }
  return v;
}
JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.type_ = Type::kNumber;
  v.is_int_ = true;
  v.int_ = i;
  v.number_ = static_cast<double>(i);
  return v;
}
JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}
JsonValue JsonValue::MakeArray(Array a) {
  JsonValue v;
  v.type_ = Type::kArray;
  v.array_ = std::move(a);
  return v;
}
JsonValue JsonValue::MakeObject(Object o) {
  JsonValue v;
  v.type_ = Type::kObject;
  v.object_ = std::move(o);
  return v;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : object_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void JsonValue::Add(std::string key, JsonValue value) {
  assert(type_ == Type::kObject);
  object_.emplace_back(std::move(key), std::move(value));
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

namespace {

void SerializeTo(const JsonValue& v, std::string* out) {
  switch (v.type()) {
    case JsonValue::Type::kNull: out->append("null"); break;
    case JsonValue::Type::kBool: out->append(v.bool_value() ? "true" : "false"); break;
    case JsonValue::Type::kNumber: {
      if (v.is_int()) {
        out->append(std::to_string(v.int_value()));
      } else if (!std::isfinite(v.number())) {
        out->append("null");  // JSON has no NaN/Inf
      } else {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.9g", v.number());
        out->append(buf);
      }
      break;
    }
    case JsonValue::Type::kString: AppendJsonString(v.string_value(), out); break;
    case JsonValue::Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v.array()) {
        if (!first) out->push_back(',');
        first = false;
        SerializeTo(e, out);
      }
      out->push_back(']');
      break;
    }
    case JsonValue::Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.object()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(k, out);
        out->push_back(':');
        SerializeTo(e, out);
      }
      out->push_back('}');
      break;
    }
  }
}

class Parser {
 public:
  Parser(std::string_view text, const JsonParseLimits& limits) : s_(text), limits_(limits) {}

  StatusOr<JsonValue> ParseDocument() {
    if (s_.size() > limits_.max_bytes) {
      return InvalidArgumentError("JSON document of " + std::to_string(s_.size()) +
                                  " bytes exceeds the limit of " +
                                  std::to_string(limits_.max_bytes));
    }
    JsonValue v;
    SOFTSERVE_RETURN_IF_ERROR(ParseValue(0, &v));
    SkipWs();
    if (pos_ != s_.size()) return Error("trailing characters after the JSON value");
    return v;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgumentError("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
      return true;
    }
    return false;
  }

  Status ParseValue(int depth, JsonValue* out) {
    if (depth > limits_.max_depth) {
      return Error("nesting deeper than " + std::to_string(limits_.max_depth));
    }
    SkipWs();
    if (pos_ >= s_.size()) return Error("unexpected end of input");
    char c = s_[pos_];
    if (c == '{') return ParseObject(depth, out);
    if (c == '[') return ParseArray(depth, out);
    if (c == '"') {
      std::string str;
      SOFTSERVE_RETURN_IF_ERROR(ParseString(&str));
      *out = JsonValue::String(std::move(str));
      return OkStatus();
    }
    if (Consume("true")) { *out = JsonValue::Bool(true); return OkStatus(); }
    if (Consume("false")) { *out = JsonValue::Bool(false); return OkStatus(); }
    if (Consume("null")) { *out = JsonValue(); return OkStatus(); }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    return Error("unexpected character " + QuoteForMessage(std::string_view(&c, 1)));
  }

  Status ParseObject(int depth, JsonValue* out) {
    ++pos_;  // '{'
    JsonValue obj = JsonValue::MakeObject();
    std::set<std::string, std::less<>> seen;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      *out = std::move(obj);
      return OkStatus();
    }
    while (true) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a string key");
      std::string key;
      SOFTSERVE_RETURN_IF_ERROR(ParseString(&key));
      if (!seen.insert(key).second) return Error("duplicate key " + QuoteForMessage(key, 100));
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      JsonValue member;
      SOFTSERVE_RETURN_IF_ERROR(ParseValue(depth + 1, &member));
      obj.Add(std::move(key), std::move(member));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated object");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == '}') { ++pos_; break; }
      return Error("expected ',' or '}'");
    }
    *out = std::move(obj);
    return OkStatus();
  }

  Status ParseArray(int depth, JsonValue* out) {
    ++pos_;  // '['
    JsonValue arr = JsonValue::MakeArray();
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      *out = std::move(arr);
      return OkStatus();
    }
    while (true) {
      JsonValue element;
      SOFTSERVE_RETURN_IF_ERROR(ParseValue(depth + 1, &element));
      arr.mutable_array().push_back(std::move(element));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated array");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == ']') { ++pos_; break; }
      return Error("expected ',' or ']'");
    }
    *out = std::move(arr);
    return OkStatus();
  }

  Status ParseHex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return Error("bad hex digit in \\u escape");
    }
    *out = v;
    return OkStatus();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') { ++pos_; return OkStatus(); }
      if (c < 0x20) return Error("control character in string");
      if (c != '\\') { out->push_back(static_cast<char>(c)); ++pos_; continue; }
      ++pos_;
      if (pos_ >= s_.size()) return Error("truncated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          SOFTSERVE_RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!Consume("\\u")) return Error("unpaired UTF-16 high surrogate");
            uint32_t lo = 0;
            SOFTSERVE_RETURN_IF_ERROR(ParseHex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("invalid UTF-16 low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("unpaired UTF-16 low surrogate");
          }
          AppendUtf8(cp, out);
          break;
        }
        default: return Error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  Status ParseNumber(JsonValue* out) {
    size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) return Error("bad number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) return Error("bad fraction");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) return Error("bad exponent");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    std::string lexeme(s_.substr(start, pos_ - start));
    if (integral) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(lexeme.c_str(), &end, 10);
      if (errno == 0 && end == lexeme.c_str() + lexeme.size()) {
        *out = JsonValue::Int(v);
        return OkStatus();
      }
    }
    // Integral values written as floats ("512.0") still count as integers.
    *out = JsonValue::Number(std::strtod(lexeme.c_str(), nullptr));
    return OkStatus();
  }

  std::string_view s_;
  JsonParseLimits limits_;
  size_t pos_ = 0;
};

}  // namespace

std::string JsonValue::Serialize() const {
  std::string out;
  SerializeTo(*this, &out);
  return out;
}

StatusOr<JsonValue> ParseJson(std::string_view text, const JsonParseLimits& limits) {
  return Parser(text, limits).ParseDocument();
}

}  // namespace softserve::core
