#pragma once
/// \file
/// The single exception type of the library and the macro that throws it.

#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dsd {

/// What went wrong, so callers can react without parsing messages.
enum class errc {
  invalid_argument,  ///< a value outside its documented range (sparsity, lr, epochs, ...)
  size_mismatch,     ///< a parameter, mask, gradient or state of the wrong size
  empty_tensor,      ///< a parameter with no elements
  non_finite,        ///< NaN or Inf where a finite value is required (e.g. weights at prune time)
  invalid_schedule,  ///< a phase schedule that cannot run
  io,                ///< a file that cannot be read or written, or is malformed
  no_device,         ///< a GPU call without a usable GPU
  backend,           ///< a failure reported by a backend library (oneDNN, CUDA, cuSPARSE)
};

/// Human-readable name of an error code.
constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::size_mismatch:
      return "size mismatch";
    case errc::empty_tensor:
      return "empty tensor";
    case errc::non_finite:
      return "non-finite value";
    case errc::invalid_schedule:
      return "invalid schedule";
    case errc::io:
      return "i/o error";
    case errc::no_device:
      return "no device";
    case errc::backend:
      return "backend error";
  }
  return "unknown";
}

/// The one exception type thrown by dsd; `what()` starts with "dsd: " and names the culprit.
class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message)
      : std::runtime_error("dsd: " + message), code_(code) {}

  /// The category of the failure.
  [[nodiscard]] errc code() const noexcept { return code_; }

 private:
  errc code_;
};

namespace detail {
template <class... Args>
[[noreturn]] void throw_error(errc code, const Args&... args) {
  std::ostringstream os;
  os.imbue(std::locale::classic());  // "0.5" and "1000000" whatever the global locale
  os.precision(9);
  (os << ... << args);
  throw error(code, os.str());
}
}  // namespace detail

}  // namespace dsd

/// Throws `dsd::error(code, message)` where the message is the streamed concatenation of the
/// remaining arguments, unless `cond` holds.
#define DSD_REQUIRE(cond, code, ...)                              \
  do {                                                            \
    if (!(cond)) [[unlikely]]                                     \
      ::dsd::detail::throw_error(::dsd::errc::code, __VA_ARGS__); \
  } while (false)

/// Throws `dsd::error(code, message)` unconditionally.
#define DSD_THROW(code, ...) ::dsd::detail::throw_error(::dsd::errc::code, __VA_ARGS__)
