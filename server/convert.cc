#include "server/convert.h"

#include "server/output_text.h"
#include "server/status_util.h"

namespace softserve::server {

core::StatusOr<core::DecodingParams> ToDecodingParams(const v1::DecodingParameters& p) {
  if (!v1::DecodingMode_IsValid(p.mode())) {
    return core::InvalidArgumentError("parameters.mode = " + std::to_string(p.mode()) +
                                      " is not a DecodingMode (GREEDY = 0, BEAM = 1, SAMPLE = 2)");
  }
  if (!v1::EarlyStopping_IsValid(p.early_stopping())) {
    return core::InvalidArgumentError("parameters.early_stopping = " + std::to_string(p.early_stopping()) +
                                      " is not an EarlyStopping value (HEURISTIC = 0, TRUE = 1, NEVER = 2)");
  }
  core::DecodingParams d;
  switch (p.mode()) {
    case v1::DECODING_MODE_BEAM: d.mode = core::DecodingMode::kBeam; break;
    case v1::DECODING_MODE_SAMPLE: d.mode = core::DecodingMode::kSample; break;
    default: d.mode = core::DecodingMode::kGreedy; break;
  }
  d.max_new_tokens = p.max_new_tokens() == 0 ? 20 : p.max_new_tokens();
  d.min_new_tokens = p.min_new_tokens();
  d.num_beams = p.num_beams() == 0 ? 4 : p.num_beams();
  d.length_penalty = p.has_length_penalty() ? p.length_penalty() : 1.0;
  switch (p.early_stopping()) {
    case v1::EARLY_STOPPING_TRUE: d.early_stopping = core::EarlyStopping::kTrue; break;
    case v1::EARLY_STOPPING_NEVER: d.early_stopping = core::EarlyStopping::kNever; break;
    default: d.early_stopping = core::EarlyStopping::kHeuristic; break;
  }
  d.temperature = p.has_temperature() ? p.temperature() : 1.0;
  d.top_k = p.top_k();
  d.top_p = p.has_top_p() ? p.top_p() : 1.0;
  d.seed = p.seed();
  d.top_logprobs = p.top_logprobs();
  if (p.has_repetition_penalty()) d.repetition_penalty = p.repetition_penalty();
  d.return_logprobs = p.return_logprobs();
  return d;
}

core::StatusOr<std::vector<int64_t>> ToIds(const v1::Input& input, const core::Tokenizer* tokenizer,
                                           const char* what) {
  switch (input.input_case()) {
    case v1::Input::kText:
      if (tokenizer == nullptr) {
        return core::FailedPreconditionError(std::string(what) + " is text but this server has no tokenizer; "
                                             "send token ids");
      }
      return tokenizer->Encode(input.text());
    case v1::Input::kIds:
      return std::vector<int64_t>(input.ids().ids().begin(), input.ids().ids().end());
    default:
      return core::InvalidArgumentError(std::string(what) + " has neither text nor ids");
  }
}

void ToProto(const core::GenerationResult& r, const core::Tokenizer* tokenizer, int input_tokens,
             v1::Generation* out, const std::vector<std::string>& stop_sequences) {
  out->mutable_output_ids()->Add(r.output_ids.begin(), r.output_ids.end());
  if (tokenizer != nullptr) {
    auto text = tokenizer->Decode(r.output_ids);
    if (text.ok()) out->set_text(*text);
  }
  out->mutable_token_logprobs()->Add(r.token_logprobs.begin(), r.token_logprobs.end());
  for (const auto& step : r.top_logprobs) ToProto(step, tokenizer, out->add_top_logprobs());
  out->set_score(r.score);
  switch (r.finish_reason) {
    case core::FinishReason::kEos: out->set_finish_reason(v1::FINISH_REASON_EOS); break;
    case core::FinishReason::kMaxTokens: out->set_finish_reason(v1::FINISH_REASON_MAX_TOKENS); break;
    case core::FinishReason::kStopSequence: out->set_finish_reason(v1::FINISH_REASON_STOP_SEQUENCE); break;
    case core::FinishReason::kTimeLimit: out->set_finish_reason(v1::FINISH_REASON_TIME_LIMIT); break;
    case core::FinishReason::kCancelled: out->set_finish_reason(v1::FINISH_REASON_CANCELLED); break;
  }
  if (!stop_sequences.empty()) {
    std::string matched;
    out->set_text(CutAtStopSequence(out->text(), stop_sequences, &matched));
    if (!matched.empty()) {
      out->set_finish_reason(v1::FINISH_REASON_STOP_SEQUENCE);
      out->set_stop_sequence(matched);
    }
  }
  out->set_input_tokens(input_tokens);
  out->set_queue_seconds(r.queue_seconds);
  out->set_total_seconds(r.total_seconds);
}

void ToProto(const std::vector<core::TokenLogprob>& top, const core::Tokenizer* tokenizer, v1::TopLogprobs* out) {
  static const std::string kWordStart = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  for (const core::TokenLogprob& t : top) {
    out->add_token_ids(t.token);
    out->add_logprobs(t.logprob);
    std::string piece = tokenizer != nullptr ? tokenizer->IdToPiece(t.token) : std::string();
    for (size_t at = piece.find(kWordStart); at != std::string::npos; at = piece.find(kWordStart, at + 1)) {
      piece.replace(at, kWordStart.size(), " ");
    }
    out->add_tokens(std::move(piece));
  }
}

void ToProto(const core::Status& error, v1::Generation* out) {
  const grpc::Status g = ToGrpcStatus(error);
  out->set_finish_reason(v1::FINISH_REASON_ERROR);
  out->set_error_code(static_cast<int32_t>(g.error_code()));
  out->set_error_message(g.error_message());
}

v1::PromptFormat ToProto(core::PromptFormat f) {
  switch (f) {
    case core::PromptFormat::kRaw: return v1::PROMPT_FORMAT_RAW;
    case core::PromptFormat::kPeft: return v1::PROMPT_FORMAT_PEFT;
    case core::PromptFormat::kResidual: return v1::PROMPT_FORMAT_RESIDUAL;
  }
  return v1::PROMPT_FORMAT_UNSPECIFIED;
}

void ToProto(const core::Prompt& p, bool include_values, v1::Prompt* out) {
  out->set_tenant(p.key().tenant);
  out->set_name(p.key().name);
  out->set_version(p.key().version);
  out->set_format(ToProto(p.format()));
  out->set_rows(p.rows());
  out->set_dim(p.dim());
  out->set_checksum_sha256(p.checksum());
  out->set_created_unix_ms(p.created_unix_ms());
  out->set_note(p.source_note());
  out->set_bytes(p.bytes());
  if (include_values) out->mutable_values()->Add(p.values().begin(), p.values().end());
}

void ToProto(const core::ScoreResult& r, const std::vector<std::vector<int64_t>>& targets,
             v1::ScoreResponse* out) {
  for (size_t t = 0; t < r.total_logprobs.size(); ++t) {
    v1::TargetScore* s = out->add_scores();
    s->mutable_target_ids()->Add(targets[t].begin(), targets[t].end());
    s->set_total_logprob(r.total_logprobs[t]);
    s->mutable_token_logprobs()->Add(r.token_logprobs[t].begin(), r.token_logprobs[t].end());
  }
  out->set_best(r.best);
}

}  // namespace softserve::server
