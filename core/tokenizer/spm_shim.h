/* The narrow C ABI of libsoftserve_spm.so, the only library that links SentencePiece.
 *
 * Debian's libsentencepiece bundles and exports protobuf-lite 3.14 symbols, which clash with
 * the libprotobuf that gRPC and libtorch load. Tokenizer (tokenizer.cc) therefore loads this
 * library at run time with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND): its symbols, and
 * those of the sentencepiece it pulls in, never enter the process's global namespace. Only
 * plain C types cross this boundary and no exception escapes it.
 */
#ifndef SOFTSERVE_CORE_TOKENIZER_SPM_SHIM_H_
#define SOFTSERVE_CORE_TOKENIZER_SPM_SHIM_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOFTSERVE_SPM_ABI_VERSION 1

typedef struct softserve_spm softserve_spm;

/* Returns SOFTSERVE_SPM_ABI_VERSION. */
int softserve_spm_abi_version(void);

/* Loads a SentencePiece model file. On failure returns NULL and writes a NUL-terminated
 * message into err[0, err_len). */
softserve_spm* softserve_spm_load(const char* path, char* err, size_t err_len);
void softserve_spm_free(softserve_spm* spm);

/* Number of pieces in the model. */
int softserve_spm_piece_size(const softserve_spm* spm);

/* Encodes UTF-8 text into piece ids. Writes at most `cap` ids and returns how many the text
 * needs (call again with a larger buffer if that exceeds cap); -1 on error. */
long softserve_spm_encode(const softserve_spm* spm, const char* text, size_t len, int* ids,
                          size_t cap);

/* Decodes piece ids (each in [0, piece_size)) into UTF-8. Writes at most `cap` bytes (no NUL)
 * and returns how many the text needs; -1 on error. */
long softserve_spm_decode(const softserve_spm* spm, const int* ids, size_t n, char* out,
                          size_t cap);

/* Writes the piece string of `id`; returns its length or -1 when id is out of range. */
long softserve_spm_id_to_piece(const softserve_spm* spm, int id, char* out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* SOFTSERVE_CORE_TOKENIZER_SPM_SHIM_H_ */
