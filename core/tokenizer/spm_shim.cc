// libsoftserve_spm.so: SentencePiece behind the C ABI of spm_shim.h. See that header for why.
#include "core/tokenizer/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

struct softserve_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void CopyOut(const std::string& s, char* out, size_t cap) {
  if (out != nullptr && cap > 0) std::memcpy(out, s.data(), s.size() < cap ? s.size() : cap);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int softserve_spm_abi_version(void) {
  return SOFTSERVE_SPM_ABI_VERSION;
}

__attribute__((visibility("default"))) softserve_spm* softserve_spm_load(const char* path,
                                                                         char* err,
                                                                         size_t err_len) {
  try {
    auto* spm = new softserve_spm;
    const auto status = spm->processor.Load(path);
    if (!status.ok()) {
      if (err != nullptr && err_len > 0) {
        std::string msg = status.ToString();
        std::strncpy(err, msg.c_str(), err_len - 1);
        err[err_len - 1] = '\0';
      }
      delete spm;
      return nullptr;
    }
    return spm;
  } catch (...) {
    if (err != nullptr && err_len > 0) std::strncpy(err, "unexpected exception", err_len - 1);
    return nullptr;
  }
}

__attribute__((visibility("default"))) void softserve_spm_free(softserve_spm* spm) { delete spm; }

__attribute__((visibility("default"))) int softserve_spm_piece_size(const softserve_spm* spm) {
  return spm->processor.GetPieceSize();
}

__attribute__((visibility("default"))) long softserve_spm_encode(const softserve_spm* spm,
                                                                 const char* text, size_t len,
                                                                 int* ids, size_t cap) {
  try {
    std::vector<int> out;
    if (!spm->processor.Encode(std::string(text, len), &out).ok()) return -1;
    for (size_t i = 0; i < out.size() && i < cap; ++i) ids[i] = out[i];
    return static_cast<long>(out.size());
  } catch (...) {
    return -1;
  }
}

__attribute__((visibility("default"))) long softserve_spm_decode(const softserve_spm* spm,
                                                                 const int* ids, size_t n,
                                                                 char* out, size_t cap) {
  try {
    const int size = spm->processor.GetPieceSize();
    std::vector<int> in(ids, ids + n);
    for (int id : in) {
      if (id < 0 || id >= size) return -1;
    }
    std::string text;
    if (!spm->processor.Decode(in, &text).ok()) return -1;
    CopyOut(text, out, cap);
    return static_cast<long>(text.size());
  } catch (...) {
    return -1;
  }
}

__attribute__((visibility("default"))) long softserve_spm_id_to_piece(const softserve_spm* spm,
                                                                      int id, char* out,
                                                                      size_t cap) {
  try {
    if (id < 0 || id >= spm->processor.GetPieceSize()) return -1;
    const std::string piece = spm->processor.IdToPiece(id);
    CopyOut(piece, out, cap);
    return static_cast<long>(piece.size());
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
