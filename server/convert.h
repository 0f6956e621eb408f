// Conversions between the wire types (softserve.v1) and core's plain types.
#ifndef SOFTSERVE_SERVER_CONVERT_H_
#define SOFTSERVE_SERVER_CONVERT_H_

#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/engine/request.h"
#include "core/prompts/prompt.h"
#include "core/tokenizer/tokenizer.h"
#include "softserve/v1/softserve.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

// Fills Hugging Face's defaults for unset fields; ranges are checked by the engine.
// InvalidArgument for an enum value the API does not define (mode, early_stopping).
core::StatusOr<core::DecodingParams> ToDecodingParams(const v1::DecodingParameters& p);

// Text is tokenized with T5's conventions (eos appended); ids are used as given.
// InvalidArgument for an empty oneof or invalid UTF-8; FailedPrecondition for text when the
// server has no tokenizer.
core::StatusOr<std::vector<int64_t>> ToIds(const v1::Input& input, const core::Tokenizer* tokenizer,
                                           const char* what);

// With stop sequences, the text is cut before the first one it contains (the finish reason then
// says STOP_SEQUENCE and stop_sequence names it).
void ToProto(const core::GenerationResult& r, const core::Tokenizer* tokenizer, int input_tokens,
             v1::Generation* out, const std::vector<std::string>& stop_sequences = {});
void ToProto(const core::Prompt& p, bool include_values, v1::Prompt* out);
void ToProto(const core::ScoreResult& r, const std::vector<std::vector<int64_t>>& targets,
             v1::ScoreResponse* out);
v1::PromptFormat ToProto(core::PromptFormat f);
// An input that failed on its own: FINISH_REASON_ERROR with the gRPC code and message.
void ToProto(const core::Status& error, v1::Generation* out);
// One step's alternatives; each token's text is its piece, with SentencePiece's word-start mark
// as a space (empty without a tokenizer).
void ToProto(const std::vector<core::TokenLogprob>& top, const core::Tokenizer* tokenizer, v1::TopLogprobs* out);

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_CONVERT_H_
