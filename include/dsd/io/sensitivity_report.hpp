#pragma once
/// \file
/// Sensitivity analysis results on disk: CSV, JSON, and an SVG plot of accuracy against sparsity
/// per layer with the chosen sparsities marked. All files are written atomically.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/io/atomic_file.hpp"
#include "dsd/io/detail/svg.hpp"
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
  // a layer name that is not valid UTF-8 is written with U+FFFD for each bad byte
  write_atomic(path, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

/// The SVG line chart of `table`: accuracy against sparsity, one line per layer, the baseline and
/// the accepted drop as dashed lines, and a ring on each layer's chosen sparsity. What
/// `write_sensitivity_svg` writes and the HTML report shows.
[[nodiscard]] inline std::string sensitivity_svg(const SensitivityTable& table, double max_drop) {
  const LayerSparsity chosen = table.choose(max_drop);
  std::vector<std::string> layers;
  double lo = table.baseline - max_drop, hi = table.baseline;
  for (const auto& p : table.points) {
    if (std::find(layers.begin(), layers.end(), p.layer) == layers.end()) layers.push_back(p.layer);
    if (std::isfinite(p.accuracy)) lo = std::min(lo, p.accuracy), hi = std::max(hi, p.accuracy);
  }
  detail::Plot plot(640, 400, detail::linear_axis(0.0, 1.0, "sparsity"),
                    detail::linear_axis(lo, hi, "accuracy"), {.left = 60, .right = 170, .top = 30, .bottom = 40});
  plot.frame(dsd::detail::format("Sensitivity: accuracy with one layer pruned (max drop %g)", max_drop));
  for (const double a : {table.baseline, table.baseline - max_drop})
    plot.line({{0.0, a}, {1.0, a}}, "gray", "4 3", 1.0);
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const char* c = detail::colour(li);
    std::vector<std::pair<double, double>> points{{0.0, table.baseline}};
    double chosen_acc = table.baseline;
    for (const auto& p : table.points) {
      if (p.layer != layers[li]) continue;
      points.emplace_back(p.sparsity, p.accuracy);
      if (p.sparsity == chosen.of(p.layer)) chosen_acc = p.accuracy;
    }
    plot.line(points, c);
    plot.circle(chosen.of(layers[li]), chosen_acc, 6, c);
    plot.text(plot.width() - 160, 46 + 16.0 * static_cast<double>(li),
              layers[li] + dsd::detail::format(" (%.2f)", chosen.of(layers[li])), c);
  }
  return plot.str();
}

/// Writes `sensitivity_svg(table, max_drop)` to `path`.
inline void write_sensitivity_svg(const std::filesystem::path& path, const SensitivityTable& table,
                                  double max_drop) {
  write_atomic(path, sensitivity_svg(table, max_drop));
}

}  // namespace dsd::io
