#include "core/tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "core/common/file_util.h"
#include "core/tokenizer/spm_shim.h"

#ifndef SOFTSERVE_SHIM_INSTALL_PATH
#define SOFTSERVE_SHIM_INSTALL_PATH "/usr/local/lib/softserve/libsoftserve_spm.so"
#endif

namespace softserve::core {

struct Tokenizer::Api {
  decltype(&softserve_spm_abi_version) abi_version;
  decltype(&softserve_spm_load) load;
  decltype(&softserve_spm_free) free;
  decltype(&softserve_spm_piece_size) piece_size;
  decltype(&softserve_spm_encode) encode;
  decltype(&softserve_spm_decode) decode;
  decltype(&softserve_spm_id_to_piece) id_to_piece;
};

namespace {

constexpr char kShimName[] = "libsoftserve_spm.so";
const std::string kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary

std::string ExecutableDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::string> ShimCandidates(const TokenizerOptions& options) {
  if (!options.shim_path.empty()) return {options.shim_path};
  std::vector<std::string> out;
  if (const char* env = std::getenv("SOFTSERVE_SPM_SHIM"); env != nullptr && *env != '\0') {
    out.push_back(env);
  }
  const std::string exe = ExecutableDir();
  out.push_back(exe + "/" + kShimName);
  out.push_back(exe + "/../lib/" + kShimName);
  out.push_back(exe + "/../lib/softserve/" + kShimName);
  out.push_back(SOFTSERVE_SHIM_INSTALL_PATH);
  return out;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

template <typename T>
bool Resolve(void* handle, const char* name, T* out) {
  *out = reinterpret_cast<T>(::dlsym(handle, name));
  return *out != nullptr;
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& model_path,
                                                     const TokenizerOptions& options) {
  if (!PathExists(model_path)) return NotFoundError("tokenizer model '" + model_path + "' not found");
  std::string tried, path;
  void* handle = nullptr;
  for (const std::string& candidate : ShimCandidates(options)) {
    if (!PathExists(candidate)) {
      tried += " " + candidate;
      continue;
    }
    // RTLD_LOCAL keeps the shim's (and sentencepiece's bundled protobuf's) symbols out of the
    // global namespace; RTLD_DEEPBIND makes them resolve to themselves first.
    handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      return FailedPreconditionError("cannot load " + candidate + ": " + ::dlerror());
    }
    path = candidate;
    break;
  }
  if (handle == nullptr) {
    return NotFoundError(std::string(kShimName) + " not found (tried" + tried +
                         "); set SOFTSERVE_SPM_SHIM to its path");
  }
  auto api = std::make_unique<Api>();
  if (!Resolve(handle, "softserve_spm_abi_version", &api->abi_version) ||
      !Resolve(handle, "softserve_spm_load", &api->load) ||
      !Resolve(handle, "softserve_spm_free", &api->free) ||
      !Resolve(handle, "softserve_spm_piece_size", &api->piece_size) ||
      !Resolve(handle, "softserve_spm_encode", &api->encode) ||
      !Resolve(handle, "softserve_spm_decode", &api->decode) ||
      !Resolve(handle, "softserve_spm_id_to_piece", &api->id_to_piece) ||
      api->abi_version() != SOFTSERVE_SPM_ABI_VERSION) {
    ::dlclose(handle);
    return FailedPreconditionError(path + " does not export the expected softserve_spm ABI v" +
                                   std::to_string(SOFTSERVE_SPM_ABI_VERSION));
  }
  char err[512] = {0};
  softserve_spm* model = api->load(model_path.c_str(), err, sizeof(err));
  if (model == nullptr) {
    ::dlclose(handle);
    return InvalidArgumentError("'" + model_path + "' is not a SentencePiece model: " + err);
  }
  const int64_t pieces = api->piece_size(model);
  return std::unique_ptr<Tokenizer>(
      new Tokenizer(options, path, handle, std::move(api), model, pieces));
}

Tokenizer::Tokenizer(TokenizerOptions options, std::string shim_path, void* handle,
                     std::unique_ptr<Api> api, void* model, int64_t piece_size)
    : options_(std::move(options)),
      shim_path_(std::move(shim_path)),
      handle_(handle),
      api_(std::move(api)),
      model_(model),
      piece_size_(piece_size) {}

Tokenizer::~Tokenizer() {
  api_->free(static_cast<softserve_spm*>(model_));
  ::dlclose(handle_);
}

Status Tokenizer::EncodePlain(std::string_view text, std::vector<int64_t>* out) const {
  if (text.empty()) return OkStatus();
  auto* model = static_cast<const softserve_spm*>(model_);
  std::vector<int> ids(text.size() + 8);
  long n = api_->encode(model, text.data(), text.size(), ids.data(), ids.size());
  if (n > static_cast<long>(ids.size())) {
    ids.resize(static_cast<size_t>(n));
    n = api_->encode(model, text.data(), text.size(), ids.data(), ids.size());
  }
  if (n < 0) return InternalError("SentencePiece failed to encode the text");
  out->insert(out->end(), ids.begin(), ids.begin() + n);
  return OkStatus();
}

StatusOr<std::vector<int64_t>> Tokenizer::Encode(std::string_view text, bool add_eos) const {
  if (!IsValidUtf8(text)) return InvalidArgumentError("input text is not valid UTF-8");
  std::vector<int64_t> out;
  size_t start = 0, pos = 0;
  // Split on special tokens the way HF's added-token matcher does, leftmost first.
  while (pos < text.size()) {
    if (text[pos] != '<') {
      ++pos;
      continue;
    }
    std::string_view rest = text.substr(pos);
    int64_t special = -1;
    size_t len = 0;
    if (rest.rfind("</s>", 0) == 0) { special = kEos; len = 4; }
    else if (rest.rfind("<pad>", 0) == 0) { special = kPad; len = 5; }
    else if (rest.rfind("<unk>", 0) == 0) { special = kUnk; len = 5; }
    else if (rest.rfind("<extra_id_", 0) == 0) {
      size_t end = 10;
      int n = 0;
      while (end < rest.size() && end < 14 && rest[end] >= '0' && rest[end] <= '9') {
        n = n * 10 + (rest[end] - '0');
        ++end;
      }
      const bool canonical = end > 10 && (end == 11 || rest[10] != '0');
      if (canonical && end < rest.size() && rest[end] == '>' && n < options_.extra_ids) {
        special = SentinelId(n);
        len = end + 1;
      }
    }
    if (special < 0) {
      ++pos;
      continue;
    }
    SOFTSERVE_RETURN_IF_ERROR(EncodePlain(text.substr(start, pos - start), &out));
    out.push_back(special);
    pos += len;
    start = pos;
  }
  SOFTSERVE_RETURN_IF_ERROR(EncodePlain(text.substr(start), &out));
  if (add_eos) out.push_back(kEos);
  return out;
}

StatusOr<std::string> Tokenizer::Decode(const std::vector<int64_t>& ids, bool skip_sentinels) const {
  auto* model = static_cast<const softserve_spm*>(model_);
  std::string out;
  std::vector<int> run;
  auto flush = [&]() -> Status {
    if (run.empty()) return OkStatus();
    std::string text(run.size() * 8 + 16, '\0');
    long n = api_->decode(model, run.data(), run.size(), text.data(), text.size());
    if (n > static_cast<long>(text.size())) {
      text.resize(static_cast<size_t>(n));
      n = api_->decode(model, run.data(), run.size(), text.data(), text.size());
    }
    if (n < 0) return InternalError("SentencePiece failed to decode");
    text.resize(static_cast<size_t>(n));
    // SentencePiece drops the word-boundary space of a run's first piece; keep it when the
    // run follows a sentinel, as HF's decoder does.
    if (!out.empty() && IdToPiece(run[0]).rfind(kSpaceMarker, 0) == 0) out.push_back(' ');
    out += text;
    run.clear();
    return OkStatus();
  };
  for (int64_t id : ids) {
    if (id < 0) return InvalidArgumentError("token id " + std::to_string(id) + " is negative");
    if (id == kPad || id == kEos) continue;
    if (id < piece_size_) {
      run.push_back(static_cast<int>(id));
      continue;
    }
    SOFTSERVE_RETURN_IF_ERROR(flush());
    // Sentinels render as text; ids past the tokenizer (padded embedding rows) have no text.
    if (id < vocab_size() && !skip_sentinels) out += IdToPiece(id);
  }
  SOFTSERVE_RETURN_IF_ERROR(flush());
  return out;
}

std::string Tokenizer::IdToPiece(int64_t id) const {
  if (id >= piece_size_ && id < vocab_size()) {
    return "<extra_id_" + std::to_string(piece_size_ + options_.extra_ids - 1 - id) + ">";
  }
  if (id < 0 || id >= piece_size_) return "";
  char buf[256];
  long n = api_->id_to_piece(static_cast<const softserve_spm*>(model_), static_cast<int>(id), buf,
                             sizeof(buf));
  if (n < 0) return "";
  return std::string(buf, static_cast<size_t>(std::min<long>(n, sizeof(buf))));
}

}  // namespace softserve::core
