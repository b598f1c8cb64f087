#pragma once
/// \file
/// The one way dsd draws a chart: an SVG plot with axes ticked at round values (1-2-5 steps, or
/// powers of ten on a log axis), gridlines, lines, bands, bars and shaded spans. Used by the
/// sensitivity plot and by every chart of the HTML report. Numbers are written through
/// `dsd::detail::format`, whatever the process locale; text is escaped for XML.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsd/detail/text.hpp"

namespace dsd::io::detail {

/// `text` escaped for XML character data and attribute values; bytes that are not valid UTF-8
/// are written as \xNN first (a layer name is user text), and so are U+FFFE and U+FFFF, which
/// are UTF-8 but not XML 1.0 characters.
inline std::string xml_escape(std::string_view text) {
  std::string safe = dsd::detail::valid_utf8(text) ? std::string(text) : dsd::detail::printable(text);
  for (const std::string_view nonchar : {std::string_view("\xEF\xBF\xBE"), std::string_view("\xEF\xBF\xBF")})
    for (auto at = safe.find(nonchar); at != std::string::npos; at = safe.find(nonchar, at))
      safe.replace(at, nonchar.size(), nonchar[2] == '\xBE' ? R"(\xef\xbf\xbe)" : R"(\xef\xbf\xbf)");
  std::string out;
  out.reserve(safe.size());
  for (const char c : safe) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += std::string{'\\', 'x', "0123456789abcdef"[(c >> 4) & 1], "0123456789abcdef"[c & 15]};
        else
          out += c;
    }
  }
  return out;
}

/// Ten distinguishable colours, one per run or layer in order.
inline const char* colour(std::size_t i) {
  static const char* const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colours[i % 10];
}

/// An axis: its domain [lo, hi], the tick values in it, and how to label them.
struct Axis {
  double lo = 0.0, hi = 1.0;
  bool log = false;  ///< log10 scale (lo > 0)
  std::vector<double> ticks;
  int decimals = 0;  ///< digits after the point of a linear tick label
  std::string label;

  /// Where `v` falls, as a fraction of the axis (0 at lo, 1 at hi).
  [[nodiscard]] double fraction(double v) const {
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }

  /// A tick's label: the value at the step's precision ("0.65", "10", "1e+04").
  [[nodiscard]] std::string tick_label(double v) const {
    if (log) return std::fabs(v) < 1e4 ? dsd::detail::format("%g", v) : dsd::detail::format("%.0e", v);
    if (std::fabs(v) >= 1e6) return dsd::detail::format("%g", v);
    const std::string fmt = "%." + std::to_string(decimals) + "f";
    std::string s = dsd::detail::format(fmt, v);
    if (s.find_first_not_of("-0.") == std::string::npos) s = dsd::detail::format(fmt, 0.0);  // "-0.00"
    return s;
  }
};

/// A linear axis over at least [lo, hi], widened to the round ticks around it: about `target`
/// intervals of 1, 2 or 5 times a power of ten. A degenerate or non-finite range becomes a small
/// one around its value (or [0, 1]).
inline Axis linear_axis(double lo, double hi, std::string label, int target = 5) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0.0, hi = 1.0;
  // Beyond ±1e300 the arithmetic below (hi - lo, the widening) would overflow.
  lo = std::clamp(lo, -1e300, 1e300);
  hi = std::clamp(hi, -1e300, 1e300);
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double half = std::max(1e-3, std::fabs(hi) * 0.05);
    lo -= half, hi += half;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  const double step = (f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0) * magnitude;
  Axis a;
  a.label = std::move(label);
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  a.lo = first * step;
  a.hi = last * step;
  const auto intervals = std::lround(last - first);  // a handful: target + 2 at most
  for (long k = 0; k <= intervals; ++k) a.ticks.push_back((first + static_cast<double>(k)) * step);
  a.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return a;
}

/// A log axis from 1 to the power of ten at or above `max` (at least 10), ticked at every power
/// of ten; `floor` (e.g. 0.5) is where the axis starts, so that a count of 1 still shows.
inline Axis log_axis(double max, std::string label, double floor = 0.5) {
  Axis a;
  a.log = true;
  a.label = std::move(label);
  a.lo = floor;
  const double top = std::ceil(std::log10(std::max(10.0, std::isfinite(max) ? max : 10.0)) - 1e-9);
  a.hi = std::pow(10.0, top);
  const int every = top > 6 ? 2 : 1;  // at most about six labelled powers
  for (int p = 0; p <= static_cast<int>(top); p += every) a.ticks.push_back(std::pow(10.0, p));
  return a;
}

/// One plot: a frame of `width` × `height` SVG units with room for the axes (`left`, `right`,
/// `top`, `bottom`), drawn into `str()`.
class Plot {
 public:
  struct Margins {
    double left = 56, right = 16, top = 28, bottom = 40;
  };

  Plot(double width, double height, Axis x, Axis y, Margins m) : w_(width), h_(height), m_(m), x_(std::move(x)), y_(std::move(y)) {}
  Plot(double width, double height, Axis x, Axis y) : Plot(width, height, std::move(x), std::move(y), Margins{}) {}

  /// SVG coordinates of data values: always finite (a value far outside the axis, or one that
  /// is not a number, lands just outside the frame; callers skip non-finite data first).
  [[nodiscard]] double px(double v) const { return m_.left + bounded(x_.fraction(v)) * (w_ - m_.left - m_.right); }
  [[nodiscard]] double py(double v) const {
    return h_ - m_.bottom - bounded(y_.fraction(v)) * (h_ - m_.top - m_.bottom);
  }
  [[nodiscard]] const Axis& x() const { return x_; }
  [[nodiscard]] const Axis& y() const { return y_; }

  /// Gridlines at every tick, tick labels, the axes' labels and the plot's title.
  void frame(std::string_view title) {
    const double x0 = m_.left, x1 = w_ - m_.right, y0 = m_.top, y1 = h_ - m_.bottom;
    for (const double t : x_.ticks) {
      emit(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>)", px(t), y0, px(t), y1);
      emit(R"(<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>)", px(t), y1 + 14,
           xml_escape(x_.tick_label(t)));
    }
    for (const double t : y_.ticks) {
      emit(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>)", x0, py(t), x1, py(t));
      emit(R"(<text x="%.1f" y="%.1f" text-anchor="end">%s</text>)", x0 - 4, py(t) + 4,
           xml_escape(y_.tick_label(t)));
    }
    emit(R"(<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>)", x0, y0,
         x1 - x0, y1 - y0);
    if (!x_.label.empty())
      emit(R"(<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>)", (x0 + x1) / 2, h_ - 6,
           xml_escape(x_.label));
    if (!y_.label.empty())
      emit(R"svg(<text transform="translate(12 %.1f) rotate(-90)" text-anchor="middle">%s</text>)svg",
           (y0 + y1) / 2, xml_escape(y_.label));
    if (!title.empty())
      emit(R"(<text x="%.1f" y="%.1f" font-weight="bold">%s</text>)", x0, y0 - 10, xml_escape(title));
  }

  /// A span of x shaded behind the data, labelled at its top.
  void shade(double from, double to, const char* fill, std::string_view label) {
    const double y0 = m_.top, y1 = h_ - m_.bottom;
    emit(R"(<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>)", px(from), y0,
         std::max(0.0, px(to) - px(from)), y1 - y0, fill);
    if (!label.empty())
      emit(R"(<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>)",
           (px(from) + px(to)) / 2, y0 + 13, xml_escape(label));
  }

  /// A line through the points; a non-finite value breaks it.
  void line(const std::vector<std::pair<double, double>>& points, const char* stroke,
            std::string_view dash = {}, double width = 2.0) {
    std::string run;
    const auto flush = [&] {
      if (run.empty()) return;
      emit(R"(<polyline fill="none" stroke="%s" stroke-width="%.1f"%s points="%s"/>)", stroke, width,
           dash.empty() ? std::string() : R"( stroke-dasharray=")" + std::string(dash) + "\"", run);
      run.clear();
    };
    for (const auto& [a, b] : points) {
      if (!std::isfinite(a) || !std::isfinite(b)) {
        flush();
        continue;
      }
      run += dsd::detail::format("%.1f,%.1f ", px(clamp_x(a)), py(clamp_y(b)));
    }
    flush();
  }

  /// A filled band between `lo` and `hi` over `xs` (e.g. mean ± sd).
  void band(const std::vector<double>& xs, const std::vector<double>& lo,
            const std::vector<double>& hi, const char* fill, double opacity = 0.2) {
    std::string pts;
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (std::isfinite(hi[i])) pts += dsd::detail::format("%.1f,%.1f ", px(xs[i]), py(clamp_y(hi[i])));
    for (std::size_t i = xs.size(); i-- > 0;)
      if (std::isfinite(lo[i])) pts += dsd::detail::format("%.1f,%.1f ", px(xs[i]), py(clamp_y(lo[i])));
    if (!pts.empty())
      emit(R"(<polygon fill="%s" fill-opacity="%.2f" stroke="none" points="%s"/>)", fill, opacity, pts);
  }

  /// A bar over [from, to] from the axis' bottom up to `value` (nothing at or below the bottom).
  void bar(double from, double to, double value, const char* fill) {
    if (!(value > y_.lo)) return;
    const double top = py(clamp_y(value)), base = h_ - m_.bottom;
    emit(R"(<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>)", px(from), top,
         std::max(0.1, px(to) - px(from)), base - top, fill);
  }

  /// A filled point marker at data (x, y).
  void dot(double x, double y, double r, const char* fill) {
    emit(R"(<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>)", px(clamp_x(x)), py(clamp_y(y)), r, fill);
  }

  /// A ring at data (x, y); nothing for a non-finite point.
  void circle(double x, double y, double r, const char* stroke) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    emit(R"(<circle cx="%.1f" cy="%.1f" r="%.1f" fill="none" stroke="%s" stroke-width="2"/>)", px(x),
         py(y), r, stroke);
  }

  /// Text at SVG coordinates (not data), e.g. a legend entry or a note.
  void text(double sx, double sy, std::string_view body, const char* fill = "#000",
            std::string_view anchor = "start") {
    emit(R"(<text x="%.1f" y="%.1f" fill="%s" text-anchor="%s">%s</text>)", sx, sy, fill,
         std::string(anchor), xml_escape(body));
  }

  /// A legend in the top right corner of the plotting area, on a white box: a line sample and a
  /// label per entry (the box sized for the longest label, some 6.2 px per character at 11 px).
  void legend(const std::vector<std::pair<std::string, const char*>>& entries) {
    std::size_t longest = 0;
    for (const auto& e : entries) {
      std::size_t chars = 0;
      for (const char c : e.first) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // UTF-8
      longest = std::max(longest, chars);
    }
    const double box = 32 + 6.2 * static_cast<double>(longest);
    const double x = std::max(m_.left + 4, w_ - m_.right - box);
    double y = m_.top + 30;
    emit(R"(<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="white" fill-opacity="0.85" stroke="#ccc"/>)",
         x - 4, y - 14, w_ - m_.right - x, 16.0 * static_cast<double>(entries.size()) + 6);
    for (const auto& [label, c] : entries) {
      emit(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>)", x, y - 4,
           x + 18, y - 4, c);
      text(x + 24, y, label);
      y += 16;
    }
  }

  [[nodiscard]] double width() const { return w_; }
  [[nodiscard]] double height() const { return h_; }
  [[nodiscard]] const Margins& margins() const { return m_; }

  /// The whole `<svg>` element (with its namespace, so it also stands alone as a file).
  [[nodiscard]] std::string str() const {
    return dsd::detail::format(
               R"(<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">)",
               w_, h_, w_, h_) +
           "\n" + dsd::detail::format(R"(<rect width="%.0f" height="%.0f" fill="white"/>)", w_, h_) +
           "\n" + body_ + "</svg>\n";
  }

 private:
  static double bounded(double f) { return std::isfinite(f) ? std::clamp(f, -0.05, 1.05) : -0.05; }
  template <class... Args>
  void emit(std::string_view fmt, const Args&... args) {
    body_ += dsd::detail::format(fmt, args...);
    body_ += '\n';
  }
  [[nodiscard]] double clamp_x(double v) const { return std::clamp(v, x_.lo, x_.hi); }
  [[nodiscard]] double clamp_y(double v) const { return std::clamp(v, y_.lo, y_.hi); }

  double w_, h_;
  Margins m_;
  Axis x_, y_;
  std::string body_;
};

}  // namespace dsd::io::detail
