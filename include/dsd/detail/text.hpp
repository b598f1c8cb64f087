#pragma once
/// \file
/// Numbers as text, independent of the process locale: a printf-style `format` over
/// `std::to_chars`, the exact hex form of a double, and strict parsing with `std::from_chars`.
/// Every number dsd writes to a file, a report or a progress line goes through here, so a
/// program that called `setlocale(LC_ALL, "de_DE.UTF-8")` still writes `0.5`, never `0,5`.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace dsd::detail {

/// One argument of `format`, erased to what a conversion needs.
struct FormatArg {
  enum class kind { integer, unsigned_integer, floating, text, missing } k;
  long long i = 0;
  unsigned long long u = 0;
  double d = 0.0;
  std::string_view s{};

  template <class T>
  static FormatArg of(const T& v) {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, bool>) {
      return {kind::unsigned_integer, 0, v ? 1u : 0u};
    } else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
      return {kind::integer, static_cast<long long>(v)};
    } else if constexpr (std::is_integral_v<U>) {
      return {kind::unsigned_integer, 0, static_cast<unsigned long long>(v)};
    } else if constexpr (std::is_floating_point_v<U>) {
      return {kind::floating, 0, 0, static_cast<double>(v)};
    } else {
      static_assert(std::is_convertible_v<const U&, std::string_view>,
                    "dsd: format takes integers, floating-point values and strings");
      return {kind::text, 0, 0, 0.0, std::string_view(v)};
    }
  }
};

inline void append_padded(std::string& out, std::string_view body, int width, bool left,
                          bool zero) {
  const std::size_t w = width > 0 ? static_cast<std::size_t>(width) : 0;
  const std::size_t pad = body.size() < w ? w - body.size() : 0;
  if (left) {
    out += body;
    out.append(pad, ' ');
  } else if (zero) {  // zeros go after the sign and a hex prefix: -0x001p+0
    std::size_t head = !body.empty() && (body[0] == '-' || body[0] == '+') ? 1 : 0;
    if (body.compare(head, 2, "0x") == 0) head += 2;
    out += body.substr(0, head);
    out.append(pad, '0');
    out += body.substr(head);
  } else {
    out.append(pad, zero ? '0' : ' ');
    out += body;
  }
}

/// Appends a number as printf's `conv` would in the C locale; returns whether it is finite (the
/// `0` flag pads only finite numbers).
inline bool append_number(std::string& out, const FormatArg& a, char conv, int precision,
                          bool plus) {
  if (conv == 'd' || conv == 'i' || conv == 'u') {
    char buf[32];
    std::to_chars_result r{buf, std::errc{}};
    bool negative = false;
    if (a.k == FormatArg::kind::integer) {
      negative = a.i < 0;
      const unsigned long long mag = negative ? 0ull - static_cast<unsigned long long>(a.i)
                                              : static_cast<unsigned long long>(a.i);
      r = std::to_chars(buf, buf + sizeof buf, mag);
    } else if (a.k == FormatArg::kind::unsigned_integer) {
      r = std::to_chars(buf, buf + sizeof buf, a.u);
    } else {
      out += "<not an integer>";
      return true;
    }
    out += negative ? "-" : plus ? "+" : "";
    const auto digits = static_cast<std::size_t>(r.ptr - buf);
    if (precision > 0 && static_cast<std::size_t>(precision) > digits)  // %.3d: at least 3 digits
      out.append(static_cast<std::size_t>(precision) - digits, '0');
    out.append(buf, r.ptr);
    return true;
  }
  if (a.k == FormatArg::kind::text) {
    out += "<not a number>";
    return true;
  }
  const double v = a.k == FormatArg::kind::floating  ? a.d
                   : a.k == FormatArg::kind::integer ? static_cast<double>(a.i)
                                                     : static_cast<double>(a.u);
  const std::string sign = std::signbit(v) ? "-" : plus ? "+" : "";
  if (std::isnan(v)) {  // printed without a sign: to_chars and printf disagree on "-nan"
    out += plus ? "+nan" : "nan";
    return false;
  }
  if (std::isinf(v)) {
    out += sign + "inf";
    return false;
  }
  const double m = std::fabs(v);
  const int p = precision < 0 ? 6 : precision;
  const auto f = conv == 'f' ? std::chars_format::fixed
                 : conv == 'e' ? std::chars_format::scientific
                 : conv == 'a' ? std::chars_format::hex
                               : std::chars_format::general;
  // Big enough for any finite double at precision p: 309 integer digits, the point, p digits.
  std::string buf(static_cast<std::size_t>(p) + 400, '\0');
  char* const first = buf.data();
  char* const last = first + buf.size();
  const auto r = conv == 'a' && precision < 0 ? std::to_chars(first, last, m, f)
                                              : std::to_chars(first, last, m, f, p);
  out += sign;
  if (conv == 'a') out += "0x";
  out.append(first, r.ec == std::errc{} ? r.ptr : first);
  return true;
}

/// The conversions of printf that dsd uses, locale-independently: `%[-+0][width][.prec]` then
/// one of `d i u zu s f e g a %`. Arguments are type-checked at run time (an integer where a
/// string is asked prints a marker, never undefined behaviour).
template <class... Args>
std::string format(std::string_view fmt, const Args&... args) {
  const FormatArg list[] = {FormatArg::of(args)..., FormatArg{FormatArg::kind::missing}};
  std::size_t next = 0;
  std::string out;
  out.reserve(fmt.size() + 16 * sizeof...(Args));
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) break;
    if (fmt[i] == '%') {
      out += '%';
      continue;
    }
    bool left = false, zero = false, plus = false;
    for (; i < fmt.size() && (fmt[i] == '-' || fmt[i] == '0' || fmt[i] == '+'); ++i)
      (fmt[i] == '-' ? left : fmt[i] == '0' ? zero : plus) = true;
    // Widths and precisions saturate at 4096: a format string is the program's, not data.
    constexpr int max_field = 4096;
    int width = 0, precision = -1;
    for (; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i)
      width = std::min(max_field, width * 10 + (fmt[i] - '0'));
    if (i < fmt.size() && fmt[i] == '.') {
      precision = 0;
      for (++i; i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9'; ++i)
        precision = std::min(max_field, precision * 10 + (fmt[i] - '0'));
    }
    while (i < fmt.size() && (fmt[i] == 'z' || fmt[i] == 'l' || fmt[i] == 'h')) ++i;
    if (i >= fmt.size()) break;
    const char conv = fmt[i];
    constexpr std::size_t count = sizeof...(Args);
    const FormatArg& a = list[std::min(next, count)];  // the sentinel once arguments run out
    next = std::min(next + 1, count);
    std::string body;
    bool pad_zeros = zero && !left && conv != 's';
    if (a.k == FormatArg::kind::missing) {
      body = "<missing>";
      pad_zeros = false;
    } else if (conv == 's') {
      body = a.k == FormatArg::kind::text ? std::string(a.s) : std::string("<not a string>");
      if (precision >= 0 && body.size() > static_cast<std::size_t>(precision))
        body.resize(static_cast<std::size_t>(precision));
    } else {
      const bool finite = append_number(body, a, conv, precision, plus);
      // printf ignores 0 for inf/nan and, when a precision is given, for integers
      pad_zeros = pad_zeros && finite && !(precision >= 0 && (conv == 'd' || conv == 'i' || conv == 'u'));
    }
    append_padded(out, body, width, left, pad_zeros);
  }
  return out;
}

/// The shortest text that reads back as exactly `v` ("0.1", "1e-07", "inf").
inline std::string to_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, r.ptr};
}

/// `v` as a C99 hex float ("0x1.333334p-2", "-0x0p+0"): exact, as `%a` in the C locale.
inline std::string to_hex_text(double v) {
  char buf[64];
  char* p = buf;
  if (std::signbit(v)) *p++ = '-';
  const double m = std::fabs(v);
  if (std::isfinite(m)) *p++ = '0', *p++ = 'x';
  const auto r = std::to_chars(p, buf + sizeof buf, m, std::chars_format::hex);
  return {buf, r.ptr};
}

/// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF): what a JSON header can hold.
inline bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned c = *p;
    std::size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 4;
    if (n == 4 || static_cast<std::size_t>(end - p) <= n) return false;  // bad lead or cut short
    std::uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k <= n; ++k) {
      if ((p[k] >> 6) != 0x2) return false;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    const std::uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

/// `text` with every byte outside printable ASCII written as \xNN, for error messages.
inline std::string printable(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

/// Parses all of `text` as a double, decimal or C99 hex ("0x1.8p+1"), whatever the locale.
/// Returns false for empty text, trailing characters or a value out of range.
inline bool parse_double(std::string_view text, double& out) {
  const char* first = text.data();
  const char* last = first + text.size();
  bool negative = false;
  if (first != last && (*first == '-' || *first == '+')) negative = *first++ == '-';
  auto fmt = std::chars_format::general;
  if (last - first > 2 && first[0] == '0' && (first[1] == 'x' || first[1] == 'X')) {
    first += 2;
    fmt = std::chars_format::hex;
    const char c = *first;  // "0xinf" and "0xnan" are not C99 hex floats
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.'))
      return false;
  }
  if (first == last || *first == '-' || *first == '+') return false;
  double v = 0.0;
  const auto r = std::from_chars(first, last, v, fmt);
  if (r.ec != std::errc{} || r.ptr != last) return false;
  out = negative ? -v : v;
  return true;
}

}  // namespace dsd::detail
