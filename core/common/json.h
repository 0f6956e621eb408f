// A small, strict JSON document model for the files softserve reads from users: HF
// config.json, safetensors headers, PEFT adapter_config.json, tenant configs.
//
// Written for hostile input: nesting depth is bounded (no stack exhaustion), numbers keep an
// exact int64 when the lexeme is an integer, duplicate object keys are rejected, and every
// error names the byte offset. Objects keep their keys in file order.
// Thread-safety: a JsonValue is a plain value; const access is safe from many threads.
#ifndef SOFTSERVE_CORE_COMMON_JSON_H_
#define SOFTSERVE_CORE_COMMON_JSON_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/common/status.h"

namespace softserve::core {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<JsonValue>;
  using Object = std::vector<std::pair<std::string, JsonValue>>;

  JsonValue() = default;  // null
  static JsonValue Bool(bool b);
  static JsonValue Number(double d);
  static JsonValue Int(int64_t i);
  static JsonValue String(std::string s);
  static JsonValue MakeArray(Array a = {});
  static JsonValue MakeObject(Object o = {});

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  // True for numbers written without fraction/exponent that fit in int64.
  bool is_int() const { return type_ == Type::kNumber && is_int_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // REQUIRES: the matching is_*() holds.
  bool bool_value() const { return bool_; }
  double number() const { return number_; }
  int64_t int_value() const { return int_; }
  const std::string& string_value() const { return string_; }
  const Array& array() const { return array_; }
  const Object& object() const { return object_; }
  Array& mutable_array() { return array_; }
  Object& mutable_object() { return object_; }

  // Object member lookup; nullptr when absent or when this is not an object.
  const JsonValue* Find(std::string_view key) const;
  // Appends (does not replace) a member. REQUIRES: is_object().
  void Add(std::string key, JsonValue value);

  // Compact serialization (no whitespace); strings escaped per RFC 8259.
  std::string Serialize() const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;
  double number_ = 0;
  int64_t int_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

struct JsonParseLimits {
  int max_depth = 64;
  size_t max_bytes = 64u << 20;
};

// Parses exactly one JSON value (surrounding whitespace allowed).
// Returns InvalidArgument naming the byte offset on any syntax error, a duplicate key, a depth
// or size over the limits, or invalid UTF-16 escapes.
StatusOr<JsonValue> ParseJson(std::string_view text, const JsonParseLimits& limits = {});

// Appends `s` as a quoted, escaped JSON string to `out`.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_COMMON_JSON_H_
