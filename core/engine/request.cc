#include "core/engine/request.h"

namespace softserve::core {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kMaxTokens: return "max_tokens";
  }
  return "max_tokens";
}

}  // namespace softserve::core
