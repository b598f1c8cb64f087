#pragma once
/// \file
/// Sensitivity analysis results on disk: CSV, JSON, and an SVG plot of accuracy against sparsity
/// per layer with the chosen sparsities marked. All files are written atomically.

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/io/atomic_file.hpp"
#include "dsd/sensitivity/analysis.hpp"

namespace dsd::io {

/// Writes `table` as CSV (layer, sparsity, accuracy, drop).
inline void write_sensitivity_csv(const std::filesystem::path& path,
                                  const SensitivityTable& table) {
  std::ostringstream os;
  table.write_csv(os);
  write_atomic(path, os.str());
}

/// Writes `table` and the sparsities chosen for `max_drop` as JSON:
/// `{"baseline", "max_drop", "layers": {name: {"sparsity": [...], "accuracy": [...], "chosen"}}}`.
inline void write_sensitivity_json(const std::filesystem::path& path, const SensitivityTable& table,
                                   double max_drop) {
  const LayerSparsity chosen = table.choose(max_drop);
  nlohmann::ordered_json j = {{"baseline", table.baseline},
                              {"max_drop", max_drop},
                              {"layers", nlohmann::ordered_json::object()}};
  for (const auto& p : table.points) {
    auto& l = j["layers"][p.layer];
    l["sparsity"].push_back(p.sparsity);
    l["accuracy"].push_back(p.accuracy);
    l["chosen"] = chosen.of(p.layer);
  }
  write_atomic(path, j.dump(2) + "\n");
}

/// Writes an SVG line chart: accuracy against sparsity, one line per layer, the baseline and the
/// accepted drop as dashed lines, and a ring on each layer's chosen sparsity.
inline void write_sensitivity_svg(const std::filesystem::path& path, const SensitivityTable& table,
                                  double max_drop) {
  const LayerSparsity chosen = table.choose(max_drop);
  std::vector<std::string> layers;
  double lo = table.baseline - max_drop, hi = table.baseline;
  for (const auto& p : table.points) {
    if (std::find(layers.begin(), layers.end(), p.layer) == layers.end()) layers.push_back(p.layer);
    lo = std::min(lo, p.accuracy);
    hi = std::max(hi, p.accuracy);
  }
  const double pad = std::max(1e-6, (hi - lo) * 0.05);
  lo -= pad;
  hi += pad;
  // The plot's size and margins (left, right, top, bottom), in SVG units.
  constexpr double width = 640, height = 400, left = 60, right = 150, top = 30, bottom = 50;
  const auto x = [&](double s) { return left + s * (width - left - right); };
  const auto y = [&](double a) { return top + (hi - a) / (hi - lo) * (height - top - bottom); };
  static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::ostringstream os;
  const auto emit = [&](const char* fmt, const auto&... args) {
    os << dsd::detail::format(fmt, args...);
  };
  emit(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      width, height);
  emit("<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  emit(
      "<text x=\"%.0f\" y=\"18\">Sensitivity: accuracy with one layer pruned (max drop "
      "%g)</text>\n",
      left, max_drop);
  emit("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left,
       height - bottom, width - right, height - bottom);
  emit("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, top,
       left, height - bottom);
  for (int i = 0; i <= 10; i += 2) {
    emit("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x(i / 10.0),
         height - bottom + 16, i / 10.0);
    const double a = lo + (hi - lo) * i / 10.0;
    emit("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4f</text>\n", left - 4, y(a) + 4, a);
  }
  emit("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">sparsity</text>\n", x(0.5), height - 10);
  emit(
      "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">accuracy</text>\n",
      (height - bottom + top) / 2);
  for (double a : {table.baseline, table.baseline - max_drop})
    emit(
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"gray\" "
        "stroke-dasharray=\"4 3\"/>\n",
        left, y(a), width - right, y(a));
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const char* c = colours[li % 10];
    os << R"(<polyline fill="none" stroke=")" << c << R"(" stroke-width="2" points=")";
    emit("%.1f,%.1f ", x(0.0), y(table.baseline));
    double chosen_acc = table.baseline;
    for (const auto& p : table.points) {
      if (p.layer != layers[li]) continue;
      emit("%.1f,%.1f ", x(p.sparsity), y(p.accuracy));
      if (p.sparsity == chosen.of(p.layer)) chosen_acc = p.accuracy;
    }
    os << "\"/>\n";
    emit(
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" stroke=\"%s\" "
        "stroke-width=\"2\"/>\n",
        x(chosen.of(layers[li])), y(chosen_acc), c);
    std::string label;  // layer names are user text: escape them for XML
    for (char ch : layers[li])
      label += ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : std::string(1, ch);
    emit(R"(<text x="%.1f" y="%.1f" fill="%s">)", width - right + 10, top + 16.0 * double(li + 1),
         c);
    os << label;
    emit(" (%.2f)</text>\n", chosen.of(layers[li]));
  }
  os << "</svg>\n";
  write_atomic(path, os.str());
}

}  // namespace dsd::io
