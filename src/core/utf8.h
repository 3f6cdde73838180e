#pragma once
/// UTF-8 checks and repairs for text that comes from peers: what the index and the logs hold is
/// always valid UTF-8 (PostgreSQL refuses anything else; JSON needs it).

#include <cstddef>
#include <string>
#include <string_view>

namespace gw::core {

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

/// Length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF); 0 when it is not one or `s` is empty.
std::size_t utf8_sequence(std::string_view s);

/// True when every byte is below 0x80.
bool is_ascii(std::string_view s);

/// True when `s` is valid UTF-8 from end to end.
bool is_utf8(std::string_view s);

/// `s` with every byte that does not start a valid sequence replaced by U+FFFD.
std::string utf8_replacing_invalid(std::string_view s);

/// ISO 8859-1 bytes as UTF-8 (every byte is one code point).
std::string latin1_to_utf8(std::string_view s);

}  // namespace gw::core
