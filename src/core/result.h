#pragma once
/// Result<T>: a value or an Error. Expected failures travel as values; exceptions are kept for
/// failures that end the program (std::bad_alloc) and never cross threads or coroutines.

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/check.h"
#include "core/error.h"

namespace gw::core {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    GW_CHECK(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    GW_CHECK(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    GW_CHECK(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    GW_CHECK(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    GW_CHECK(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& {
    GW_CHECK(!ok());
    return *error_;
  }
  Error&& error() && {
    GW_CHECK(!ok());
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace gw::core

#define GW_CONCAT_INNER_(a, b) a##b
#define GW_CONCAT_(a, b) GW_CONCAT_INNER_(a, b)

/// Returns the error of a Status-returning expression from the enclosing function.
#define GW_RETURN_IF_ERROR(expr)                                \
  do {                                                          \
    auto gw_status_ = (expr);                                   \
    if (!gw_status_.ok()) return std::move(gw_status_).error(); \
  } while (0)

/// `GW_ASSIGN_OR_RETURN(auto x, f());` binds the value or returns the error.
#define GW_ASSIGN_OR_RETURN(lhs, expr) \
  GW_ASSIGN_OR_RETURN_IMPL_(GW_CONCAT_(gw_r_, __LINE__), lhs, expr)
#define GW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).error();   \
  lhs = std::move(tmp).value()

/// Coroutine form of GW_RETURN_IF_ERROR (co_return instead of return).
#define GW_CO_RETURN_IF_ERROR(expr)                                \
  do {                                                             \
    auto gw_status_ = (expr);                                      \
    if (!gw_status_.ok()) co_return std::move(gw_status_).error(); \
  } while (0)
