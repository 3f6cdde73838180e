#pragma once
/// Internal to the PostgreSQL backend: small SQL-building and validation helpers shared by its
/// files. Values always travel as parameters; only column names (our own constants) and
/// placeholders are put into SQL text.

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "core/result.h"
#include "index/postgres/pg_connection.h"

namespace gw::index::pg {

/// a + b without signed overflow (a lease of "forever" must not wrap into the past).
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) {
    return std::numeric_limits<std::int64_t>::max();
  }
  return a + b;
}

/// `column` starts with `prefix`, as SQL. When the prefix ends in a printable ASCII character
/// (identifiers, action names: the usual case) it is a range, `column >= p AND column < p'`
/// with the last character incremented, which a "C"-collated index serves; otherwise
/// starts_with() (p' might not be valid UTF-8). No LIKE: '%' and '_' stay literal.
inline std::string prefix_condition(std::string_view column, const std::string& prefix,
                                    Params& params) {
  const unsigned char last = static_cast<unsigned char>(prefix.back());
  if (last >= 0x20 && last < 0x7e) {
    std::string upper = prefix;
    upper.back() = static_cast<char>(last + 1);
    const std::string lower_ph = params.placeholder(prefix);
    return std::string(column) + " >= " + lower_ph + " AND " + std::string(column) + " < " +
           params.placeholder(upper);
  }
  return "starts_with(" + std::string(column) + ", " + params.placeholder(prefix) + ")";
}

/// Appends a text filter: exact, or a prefix match when `value` ends with '*'. Empty = no filter.
inline void add_text_filter(std::string_view column, const std::string& value, std::string& where,
                            Params& params) {
  if (value.empty()) return;
  if (value.back() != '*') {
    where.append(" AND ").append(column).append(" = ").append(params.placeholder(value));
    return;
  }
  const std::string prefix = value.substr(0, value.size() - 1);
  if (prefix.empty()) return;  // "*" matches everything
  where.append(" AND ").append(prefix_condition(column, prefix, params));
}

/// ORDER BY term for a DICOM IS value ("12", " 3"): its leading integer, 0 when it has none —
/// what SQLite's CAST(x AS INTEGER) gives, without PostgreSQL's error on non-numeric text.
inline std::string numeric_order(std::string_view column) {
  return "coalesce(substring(" + std::string(column) +
         " from '^\\s*([-+]?[0-9]{1,18})')::bigint, 0)";
}

}  // namespace gw::index::pg
