#include "core/engine/request.h"

namespace softserve::core {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kMaxTokens: return "max_tokens";
    case FinishReason::kStopSequence: return "stop_sequence";
    case FinishReason::kTimeLimit: return "time_limit";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "max_tokens";
}

}  // namespace softserve::core
