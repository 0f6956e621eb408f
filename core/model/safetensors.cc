#include "core/model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/common/json.h"

namespace softserve::core {
namespace {

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::kF64, "F64", 8},  {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kF16, "F16", 2},  {SafetensorsDtype::kBF16, "BF16", 2},
    {SafetensorsDtype::kI64, "I64", 8},  {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kI16, "I16", 2},  {SafetensorsDtype::kI8, "I8", 1},
    {SafetensorsDtype::kU8, "U8", 1},    {SafetensorsDtype::kBool, "BOOL", 1},
};

const DtypeInfo& Info(SafetensorsDtype d) {
  for (const auto& i : kDtypes) {
    if (i.dtype == d) return i;
  }
  return kDtypes[1];
}

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Extent {
  uint64_t begin, end;
  size_t index;
};

}  // namespace

bool ParseSafetensorsDtype(std::string_view name, SafetensorsDtype* out) {
  for (const auto& i : kDtypes) {
    if (name == i.name) {
      *out = i.dtype;
      return true;
    }
  }
  return false;
}

const char* SafetensorsDtypeName(SafetensorsDtype dtype) { return Info(dtype).name; }
size_t SafetensorsDtypeSize(SafetensorsDtype dtype) { return Info(dtype).size; }

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const TensorView* SafetensorsContents::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<SafetensorsContents> SafetensorsContents::Parse(const uint8_t* data, size_t size,
                                                         const std::string& what,
                                                         const SafetensorsLimits& limits) {
  auto bad = [&](const std::string& msg) {
    return InvalidArgumentError("safetensors '" + what + "': " + msg);
  };
  if (size < 8) {
    return DataLossError("safetensors '" + what + "': " + std::to_string(size) +
                         " bytes is too short for the 8-byte header length");
  }
  uint64_t header_len = ReadLe64(data);
  if (header_len > limits.max_header_bytes) {
    return bad("header length " + std::to_string(header_len) + " exceeds the limit of " +
               std::to_string(limits.max_header_bytes) + " bytes");
  }
  if (header_len > size - 8) {
    return DataLossError("safetensors '" + what + "': header length " +
                         std::to_string(header_len) + " runs past the end of the " +
                         std::to_string(size) + "-byte file (truncated?)");
  }
  std::string_view header(reinterpret_cast<const char*>(data + 8), header_len);
  auto json = ParseJson(header, JsonParseLimits{16, limits.max_header_bytes});
  if (!json.ok()) return bad("header: " + json.status().message());
  if (!json->is_object()) return bad("header is not a JSON object");

  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;

  SafetensorsContents out;
  std::vector<Extent> extents;
  for (const auto& member : json->object()) {
    const std::string& name = member.first;
    const JsonValue& entry = member.second;
    if (name == "__metadata__") {
      if (!entry.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : entry.object()) {
        if (!v.is_string()) return bad("__metadata__ value for " + QuoteForMessage(k, 100) + " is not a string");
        out.metadata_[k] = v.string_value();
      }
      continue;
    }
    if (out.tensors_.size() >= limits.max_tensors) {
      return bad("more than " + std::to_string(limits.max_tensors) + " tensors");
    }
    auto bad_tensor = [&](const std::string& msg) { return bad("tensor " + QuoteForMessage(name, 100) + ": " + msg); };
    if (!entry.is_object()) return bad_tensor("entry is not an object");
    const JsonValue* dtype = entry.Find("dtype");
    const JsonValue* shape = entry.Find("shape");
    const JsonValue* offsets = entry.Find("data_offsets");
    if (dtype == nullptr || !dtype->is_string()) return bad_tensor("missing string 'dtype'");
    if (shape == nullptr || !shape->is_array()) return bad_tensor("missing array 'shape'");
    if (offsets == nullptr || !offsets->is_array() || offsets->array().size() != 2) {
      return bad_tensor("'data_offsets' must be an array [begin, end]");
    }
    TensorView view;
    view.name = name;
    if (!ParseSafetensorsDtype(dtype->string_value(), &view.dtype)) {
      return bad_tensor("unsupported dtype " + QuoteForMessage(dtype->string_value(), 20));
    }
    if (shape->array().size() > limits.max_rank) {
      return bad_tensor("rank " + std::to_string(shape->array().size()) + " exceeds " +
                        std::to_string(limits.max_rank));
    }
    // numel * itemsize must not overflow: bound every step by the body size.
    uint64_t numel = 1;
    bool zero = false;
    for (const auto& dim : shape->array()) {
      if (!dim.is_int() || dim.int_value() < 0) {
        return bad_tensor("shape entries must be non-negative integers");
      }
      uint64_t d = static_cast<uint64_t>(dim.int_value());
      view.shape.push_back(dim.int_value());
      if (d == 0) zero = true;
      if (!zero && d > 0 && numel > (body_size + 1) / d) {
        return bad_tensor("shape " + view.ShapeString() + " is larger than the file");
      }
      numel = zero ? 0 : numel * d;
    }
    const size_t item = SafetensorsDtypeSize(view.dtype);
    const uint64_t nbytes = numel * item;  // numel <= body_size + 1, item <= 8: no overflow
    const JsonValue& b = offsets->array()[0];
    const JsonValue& e = offsets->array()[1];
    if (!b.is_int() || !e.is_int() || b.int_value() < 0 || e.int_value() < b.int_value()) {
      return bad_tensor("data_offsets must be integers with 0 <= begin <= end");
    }
    const uint64_t begin = static_cast<uint64_t>(b.int_value());
    const uint64_t end = static_cast<uint64_t>(e.int_value());
    if (end - begin != nbytes) {
      return bad_tensor("data_offsets span " + std::to_string(end - begin) + " bytes but " +
                        dtype->string_value() + " " + view.ShapeString() + " needs " +
                        std::to_string(nbytes));
    }
    if (end > body_size) {
      return DataLossError("safetensors '" + what + "': tensor '" + name + "' ends at byte " +
                           std::to_string(end) + " of a " + std::to_string(body_size) +
                           "-byte data section (truncated?)");
    }
    view.data = body + begin;
    view.nbytes = static_cast<size_t>(nbytes);
    extents.push_back({begin, end, out.tensors_.size()});
    out.index_[view.name] = out.tensors_.size();
    out.tensors_.push_back(std::move(view));
  }
  // As the reference implementation: the tensors tile the data section exactly, in offset
  // order, with no overlap, no gap and nothing after the last one.
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t expected = 0;
  for (size_t i = 0; i < extents.size(); ++i) {
    const std::string& name = out.tensors_[extents[i].index].name;
    if (extents[i].begin < expected) {
      return bad("tensors " + QuoteForMessage(out.tensors_[extents[i - 1].index].name, 100) + " and " +
                 QuoteForMessage(name, 100) + " overlap");
    }
    if (extents[i].begin > expected) {
      return bad("a gap of " + std::to_string(extents[i].begin - expected) + " bytes precedes tensor " +
                 QuoteForMessage(name, 100) + " (tensors must be contiguous)");
    }
    expected = extents[i].end;
  }
  if (expected != body_size) {
    return bad(std::to_string(body_size - expected) + " bytes follow the last tensor (the data section must end "
               "with it)");
  }
  return out;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path, const SafetensorsLimits& limits) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  SOFTSERVE_ASSIGN_OR_RETURN(auto contents,
                             SafetensorsContents::Parse(file->data(), file->size(), path, limits));
  return std::unique_ptr<SafetensorsFile>(
      new SafetensorsFile(std::move(file), std::move(contents)));
}

StatusOr<std::string> SerializeSafetensors(const std::vector<TensorToWrite>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  JsonValue header = JsonValue::MakeObject();
  if (!metadata.empty()) {
    JsonValue meta = JsonValue::MakeObject();
    for (const auto& [k, v] : metadata) meta.Add(k, JsonValue::String(v));
    header.Add("__metadata__", std::move(meta));
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      return InvalidArgumentError("duplicate or reserved tensor name '" + t.name + "'");
    }
    uint64_t numel = 1;
    JsonValue shape = JsonValue::MakeArray();
    for (int64_t d : t.shape) {
      if (d < 0) return InvalidArgumentError("negative dimension in '" + t.name + "'");
      numel *= static_cast<uint64_t>(d);
      shape.mutable_array().push_back(JsonValue::Int(d));
    }
    if (numel * SafetensorsDtypeSize(t.dtype) != t.bytes.size()) {
      return InvalidArgumentError("tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                                  " bytes, its shape needs " +
                                  std::to_string(numel * SafetensorsDtypeSize(t.dtype)));
    }
    JsonValue entry = JsonValue::MakeObject();
    entry.Add("dtype", JsonValue::String(SafetensorsDtypeName(t.dtype)));
    entry.Add("shape", std::move(shape));
    JsonValue offs = JsonValue::MakeArray();
    offs.mutable_array().push_back(JsonValue::Int(static_cast<int64_t>(offset)));
    offs.mutable_array().push_back(JsonValue::Int(static_cast<int64_t>(offset + t.bytes.size())));
    entry.Add("data_offsets", std::move(offs));
    header.Add(t.name, std::move(entry));
    offset += t.bytes.size();
  }
  std::string json = header.Serialize();
  while (json.size() % 8 != 0) json.push_back(' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += json;
  for (const auto& t : tensors) out += t.bytes;
  return out;
}

}  // namespace softserve::core
