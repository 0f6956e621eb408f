// Tenant and prompt names: what is allowed, and how a name becomes a path component.
// Names are checked against a safe pattern and, even then, never used raw as paths: the store
// hex-encodes them, so no name can traverse directories or collide on case-insensitive disks.
#ifndef SOFTSERVE_CORE_PROMPTS_PROMPT_NAMES_H_
#define SOFTSERVE_CORE_PROMPTS_PROMPT_NAMES_H_

#include <string>
#include <string_view>

#include "core/common/status.h"

namespace softserve::core {

inline constexpr size_t kMaxNameLength = 100;

// [A-Za-z0-9][A-Za-z0-9._-]{0,99}. Returns InvalidArgument saying what is wrong; `what` is
// "tenant" or "prompt name".
Status ValidateName(std::string_view name, std::string_view what);

std::string HexEncode(std::string_view s);
// False if `hex` is not an even-length lowercase hex string.
bool HexDecode(std::string_view hex, std::string* out);

}  // namespace softserve::core

#endif  // SOFTSERVE_CORE_PROMPTS_PROMPT_NAMES_H_
