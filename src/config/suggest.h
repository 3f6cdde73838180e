#pragma once
/// "Did you mean …?" hints for configuration messages (unknown keys, destination names, DICOM
/// keywords in routing rules).

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace gw::config {

/// Levenshtein distance, ignoring ASCII case.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is close enough to be a likely typo.
std::optional<std::string_view> closest(std::string_view word,
                                        std::span<const std::string_view> candidates);

}  // namespace gw::config
