#pragma once
/// \file
/// A run a user can look at: one self-contained HTML file (inline SVG, no scripts, no fonts or
/// images fetched; readable offline and printable) with the schedule, the accuracy and loss
/// curves by epoch with the phases shaded and every run overlaid, each layer's weight
/// histogram at every phase boundary (the paper's D → S → D figure), the sparsity of each layer
/// after each prune, the sensitivity curves when there are any, and each run's metadata.
///
/// \code
/// dsd::io::RunRecorder recorder;
/// recorder.attach(cb, layers);
/// dsd::run(layers, plan, thresholds, cb);
/// dsd::io::RunRecord dsd_run = recorder.record("dsd", plan);
/// dsd_run.metadata = {{"seed", "1"}};
/// dsd::io::write_report("run.html", {dsd_run, dense_run});
/// \endcode

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsd/config.hpp"
#include "dsd/detail/text.hpp"
#include "dsd/error.hpp"
#include "dsd/io/atomic_file.hpp"
#include "dsd/io/detail/svg.hpp"
#include "dsd/io/run_recorder.hpp"
#include "dsd/io/sensitivity_report.hpp"

namespace dsd::io {

struct ReportOptions {
  std::string title = "DSD run";
};

namespace detail {

using dsd::detail::format;

/// The runs of a report grouped by name, in the order the names first appear.
struct RunGroup {
  std::string name;
  std::vector<const RunRecord*> seeds;
};

inline std::vector<RunGroup> group_runs(std::span<const RunRecord> runs) {
  std::vector<RunGroup> groups;
  for (const RunRecord& r : runs) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const RunGroup& g) { return g.name == r.name; });
    if (it == groups.end()) it = groups.insert(groups.end(), RunGroup{r.name, {}});
    it->seeds.push_back(&r);
  }
  return groups;
}

/// Mean and sample standard deviation (0 for one value) of the finite values; NaN when none.
struct Stat {
  double mean = 0.0, sd = 0.0;
  std::size_t n = 0;
};

inline Stat stat(const std::vector<double>& v) {
  Stat s;
  for (const double x : v)
    if (std::isfinite(x)) s.mean += x, ++s.n;
  if (s.n == 0) return {std::nan(""), std::nan(""), 0};
  s.mean /= static_cast<double>(s.n);
  for (const double x : v)
    if (std::isfinite(x)) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = s.n > 1 ? std::sqrt(s.sd / static_cast<double>(s.n - 1)) : 0.0;
  return s;
}

inline std::string show(const Stat& s, const char* fmt = "%.4f") {
  if (s.n == 0) return "–";
  std::string out = format(fmt, s.mean);
  if (s.n > 1) out += " ± " + format(fmt, s.sd);
  return out;
}

inline std::string phase_letter(Phase p) { return p == Phase::dense ? "D" : p == Phase::sparse ? "S" : "R"; }

/// A group's per-epoch curve of `field`: mean and sd over its seeds, epoch by epoch. Seeds of
/// one configuration must have run the same number of epochs.
template <class Field>
std::vector<Stat> curve(const RunGroup& g, Field field) {
  const std::size_t n = g.seeds.front()->epochs.size();
  for (const RunRecord* r : g.seeds)
    DSD_REQUIRE(r->epochs.size() == n, invalid_argument, "write_report: the runs called \"", g.name,
                "\" have ", n, " and ", r->epochs.size(),
                " epochs; runs of one name are seeds of one configuration (give them other names)");
  std::vector<Stat> out;
  for (std::size_t e = 0; e < n; ++e) {
    std::vector<double> v;
    for (const RunRecord* r : g.seeds) v.push_back(field(r->epochs[e]));
    out.push_back(stat(v));
  }
  return out;
}

/// A chart of one per-epoch quantity, every group overlaid (a band of ± sd when it has several
/// seeds), the phases of the longest run shaded.
/// `steps`: the quantity holds through each epoch (the sparsity), drawn flat over it; else it is
/// measured after each epoch, a marked point at its end.
template <class Field>
std::string curve_chart(const std::vector<RunGroup>& groups, std::string_view title,
                        std::string_view y_label, Field field, bool steps = false) {
  double lo = INFINITY, hi = -INFINITY;
  const RunRecord* longest = nullptr;
  std::vector<std::vector<Stat>> curves;
  for (const RunGroup& g : groups) {
    curves.push_back(curve(g, field));
    for (const Stat& s : curves.back())
      if (s.n > 0) lo = std::min(lo, s.mean - s.sd), hi = std::max(hi, s.mean + s.sd);
    // The phases shaded are the longest run's, a run with a sparse phase first among equals.
    const auto has_sparse = [](const RunRecord* r) {
      return std::any_of(r->epochs.begin(), r->epochs.end(), [](const EpochRecord& e) { return e.phase == Phase::sparse; });
    };
    const RunRecord* r = g.seeds.front();
    if (!longest || r->epochs.size() > longest->epochs.size() ||
        (r->epochs.size() == longest->epochs.size() && has_sparse(r) && !has_sparse(longest)))
      longest = r;
  }
  if (!(lo <= hi)) lo = 0.0, hi = 1.0;
  const std::size_t units = std::max<std::size_t>(1, longest->epochs.size());  // the longest run's
  Plot plot(640, 300, linear_axis(0.0, static_cast<double>(units), "epoch (or step unit)"),
            linear_axis(lo, hi, std::string(y_label)), {.left = 60, .right = 16, .top = 28, .bottom = 40});
  // Phases: a span per run of consecutive epochs of one phase index; sparse phases shaded.
  const auto& ep = longest->epochs;
  for (std::size_t b = 0; b < ep.size();) {
    std::size_t e = b;
    while (e < ep.size() && ep[e].phase_index == ep[b].phase_index) ++e;
    const char* fill = ep[b].phase == Phase::sparse ? "#fde8d0" : ep[b].phase == Phase::redense ? "#e3f0e3" : "#eef2f8";
    plot.shade(static_cast<double>(b), static_cast<double>(e), fill,
               phase_letter(ep[b].phase) + std::to_string(ep[b].round));
    b = e;
  }
  plot.frame(title);
  std::vector<std::pair<std::string, const char*>> legend;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const char* c = colour(gi);
    std::vector<double> xs, los, his;
    std::vector<std::pair<double, double>> points;
    for (std::size_t e = 0; e < curves[gi].size(); ++e) {
      const Stat& s = curves[gi][e];
      const double end = static_cast<double>(e) + 1.0;  // after epoch e
      for (const double x : steps ? std::vector<double>{end - 1.0, end} : std::vector<double>{end}) {
        xs.push_back(x);
        los.push_back(s.mean - s.sd);
        his.push_back(s.mean + s.sd);
        points.emplace_back(x, s.n > 0 ? s.mean : NAN);
      }
    }
    if (groups[gi].seeds.size() > 1) plot.band(xs, los, his, c);
    plot.line(points, c);
    if (!steps && points.size() <= 60)
      for (const auto& [x, y] : points)
        if (std::isfinite(y)) plot.dot(x, y, 2.5, c);
    const std::size_t seeds = groups[gi].seeds.size();
    legend.emplace_back(seeds > 1 ? format("%s (mean ± sd, %zu seeds)", groups[gi].name, seeds)
                                  : groups[gi].name,
                        c);
  }
  plot.legend(legend);
  return plot.str();
}

/// A small histogram of one layer at one boundary: bars on a log-count axis, the pruned count
/// and any weights outside the range written beneath.
inline std::string histogram_cell(const WeightHistogram& h, std::uint64_t max_count, std::string_view title) {
  Plot plot(220, 150, linear_axis(-h.range, h.range, "", 3), log_axis(static_cast<double>(max_count), ""),
            {.left = 40, .right = 16, .top = 20, .bottom = 34});
  plot.frame(title);
  for (std::size_t i = 0; i < h.counts.size(); ++i)
    if (h.counts[i] > 0) plot.bar(h.edge(i), h.edge(i + 1), static_cast<double>(h.counts[i]), "#1f77b4");
  const std::uint64_t total = h.kept() + h.pruned;
  std::string note = "pruned " + std::to_string(h.pruned);
  if (total > 0) note += format(" (%.1f%%)", 100.0 * static_cast<double>(h.pruned) / static_cast<double>(total));
  if (h.below + h.above > 0)
    note += ", outside " + std::to_string(h.below + h.above);
  plot.text(40, 148, note, h.pruned > 0 ? "#b22222" : "#555");
  return plot.str();
}

/// "2: S1 start": the phase's place in the plan (a dense baseline's phases are all D1), its
/// kind and round, and which end of it.
inline std::string boundary_label(const Boundary& b) {
  return std::to_string(b.phase_index + 1) + ": " + phase_letter(b.phase) + std::to_string(b.round) +
         (b.opening ? " start" : " end");
}

inline std::string html_table(const std::vector<std::string>& header,
                              const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table>\n<tr>";
  for (const auto& h : header) out += "<th>" + xml_escape(h) + "</th>";
  out += "</tr>\n";
  for (const auto& r : rows) {
    out += "<tr>";
    for (const auto& c : r) out += "<td>" + xml_escape(c) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

inline std::string length_text(int epochs, std::int64_t steps) {
  if (steps > 0) return std::to_string(steps) + (steps == 1 ? " step" : " steps");
  return std::to_string(epochs) + (epochs == 1 ? " epoch" : " epochs");
}

inline std::string schedule_table(const std::vector<ScheduleRow>& rows) {
  std::vector<std::vector<std::string>> body;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ScheduleRow& r = rows[i];
    body.push_back({std::to_string(i), std::string(to_string(r.phase)), std::to_string(r.round),
                    length_text(r.epochs, r.steps), format("%g", r.lr), r.decay,
                    r.before.empty() ? "–" : r.before});
  }
  return html_table({"#", "phase", "round", "length", "lr", "decay in phase", "before it"}, body);
}

inline bool same_schedule(const std::vector<ScheduleRow>& a, const std::vector<ScheduleRow>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const ScheduleRow& x, const ScheduleRow& y) {
    return x.phase == y.phase && x.round == y.round && x.epochs == y.epochs && x.steps == y.steps &&
           x.lr == y.lr && x.decay == y.decay && x.before == y.before;
  });
}

inline constexpr std::string_view report_style = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 0.9em; }
th { background: #f2f2f2; }
td.cell { padding: 0; border: none; }
.note { color: #555; font-size: 0.9em; }
svg { display: inline-block; vertical-align: top; }
@media print { h2 { break-after: avoid; } svg, table { break-inside: avoid; } }
)";

}  // namespace detail

/// The report of `runs` as one HTML page. Runs sharing a name are seeds of one configuration:
/// their curves are drawn as mean ± sd and they must have the same number of epochs (else
/// `errc::invalid_argument` naming them); the histograms, sparsity and sensitivity shown for a
/// configuration are its first run's.
[[nodiscard]] inline std::string report_html(std::span<const RunRecord> runs, const ReportOptions& options = {}) {
  using detail::format;
  using detail::xml_escape;
  DSD_REQUIRE(!runs.empty(), invalid_argument, "write_report: no runs to report");
  const std::vector<detail::RunGroup> groups = detail::group_runs(runs);
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  xml_escape(options.title) + "</title>\n<style>" + std::string(detail::report_style) +
                  "</style>\n</head>\n<body>\n<h1>" + xml_escape(options.title) + "</h1>\n";
  h += format("<p class=\"note\">Written by dsd %d.%d.%d: %zu run(s) of %zu configuration(s).</p>\n",
              DSD_VERSION_MAJOR, DSD_VERSION_MINOR, DSD_VERSION_PATCH, runs.size(), groups.size());

  // Runs: the last evaluation and the user's results, mean ± sd over seeds.
  {
    std::vector<std::string> keys;
    for (const RunRecord& r : runs)
      for (const auto& [k, v] : r.results)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    std::vector<std::string> header{"run", "seeds", "epochs", "last accuracy", "seconds"};
    header.insert(header.end(), keys.begin(), keys.end());
    std::vector<std::vector<std::string>> rows;
    for (const auto& g : groups) {
      std::vector<double> last, secs;
      for (const RunRecord* r : g.seeds) {
        last.push_back(r->epochs.empty() ? NAN : r->epochs.back().accuracy);
        double s = 0;
        for (const auto& e : r->epochs) s += e.seconds;
        secs.push_back(s);
      }
      std::vector<std::string> row{g.name, std::to_string(g.seeds.size()),
                                   std::to_string(g.seeds.front()->epochs.size()),
                                   detail::show(detail::stat(last)), detail::show(detail::stat(secs), "%.1f")};
      for (const auto& k : keys) {
        std::vector<double> v;
        for (const RunRecord* r : g.seeds)
          for (const auto& [rk, rv] : r->results)
            if (rk == k) v.push_back(rv);
        row.push_back(detail::show(detail::stat(v)));
      }
      rows.push_back(std::move(row));
    }
    h += "<section id=\"runs\">\n<h2>Runs</h2>\n" + detail::html_table(header, rows) + "</section>\n";
  }

  // Schedule: one table when every configuration ran the same phases.
  h += "<section id=\"schedule\">\n<h2>Schedule</h2>\n";
  const bool one_schedule = std::all_of(groups.begin(), groups.end(), [&](const detail::RunGroup& g) {
    return detail::same_schedule(g.seeds.front()->schedule, groups.front().seeds.front()->schedule);
  });
  for (const auto& g : groups) {
    if (!one_schedule) h += "<h3>" + xml_escape(g.name) + "</h3>\n";
    h += g.seeds.front()->schedule.empty() ? "<p class=\"note\">No schedule recorded.</p>\n"
                                           : detail::schedule_table(g.seeds.front()->schedule);
    if (one_schedule) break;
  }
  h += "</section>\n";

  h += "<section id=\"curves\">\n<h2>Accuracy and loss by epoch</h2>\n";
  h += detail::curve_chart(groups, "Accuracy (the loop's evaluation after each epoch)", "accuracy",
                           [](const EpochRecord& e) { return e.accuracy; });
  h += detail::curve_chart(groups, "Training loss (mean over the epoch's batches)", "loss",
                           [](const EpochRecord& e) { return e.loss; });
  h += detail::curve_chart(groups, "Sparsity (pruned fraction of the layers' positions)", "sparsity",
                           [](const EpochRecord& e) { return e.sparsity; }, true);
  h += "</section>\n";

  h += "<section id=\"histograms\">\n<h2>Weight distributions at each phase boundary</h2>\n"
       "<p class=\"note\">Kept weights per bin, log count; pruned positions are counted apart "
       "(beneath each plot). Start: right after the phase's prune or re-dense; end: after its last "
       "epoch.</p>\n";
  for (const auto& g : groups) {
    const RunRecord& r = *g.seeds.front();
    h += "<h3>" + xml_escape(g.name) + (g.seeds.size() > 1 ? " (its first run)" : "") + "</h3>\n";
    if (r.boundaries.empty()) {
      h += "<p class=\"note\">No histograms recorded.</p>\n";
      continue;
    }
    const std::size_t layers = r.boundaries.front().layers.size();
    h += "<table>\n";
    for (std::size_t l = 0; l < layers; ++l) {
      std::uint64_t max_count = 1;
      for (const Boundary& b : r.boundaries)
        if (l < b.layers.size())
          for (const auto c : b.layers[l].counts) max_count = std::max(max_count, c);
      h += "<tr><th>" + xml_escape(r.boundaries.front().layers[l].layer) + "</th>";
      for (const Boundary& b : r.boundaries)
        h += "<td class=\"cell\">" +
             (l < b.layers.size() ? detail::histogram_cell(b.layers[l], max_count, detail::boundary_label(b)) : "") +
             "</td>";
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  h += "</section>\n";

  h += "<section id=\"sparsity\">\n<h2>Sparsity per layer after each prune</h2>\n";
  for (const auto& g : groups) {
    const RunRecord& r = *g.seeds.front();
    std::vector<const PhaseReport*> pruned;
    for (const PhaseReport& p : r.phases)
      if (p.phase == Phase::sparse) pruned.push_back(&p);
    h += "<h3>" + xml_escape(g.name) + "</h3>\n";
    if (pruned.empty()) {
      h += "<p class=\"note\">No sparse phase.</p>\n";
      continue;
    }
    std::vector<std::string> header{"layer", "weights"};
    for (const PhaseReport* p : pruned) header.push_back(format("S%d sparsity (threshold)", p->round));
    std::vector<std::vector<std::string>> rows;
    for (std::size_t l = 0; l < pruned.front()->layers.size(); ++l) {
      const LayerReport& first = pruned.front()->layers[l];
      std::vector<std::string> row{first.name, std::to_string(first.size)};
      for (const PhaseReport* p : pruned)
        row.push_back(l < p->layers.size()
                          ? format("%.4f (%.4g)", p->layers[l].sparsity, p->layers[l].threshold)
                          : "–");
      rows.push_back(std::move(row));
    }
    h += detail::html_table(header, rows);
  }
  h += "</section>\n";

  const bool any_sensitivity = std::any_of(runs.begin(), runs.end(), [](const RunRecord& r) { return r.sensitivity.has_value(); });
  if (any_sensitivity) {
    h += "<section id=\"sensitivity\">\n<h2>Sensitivity analysis</h2>\n";
    for (const auto& g : groups) {
      const RunRecord& r = *g.seeds.front();
      if (!r.sensitivity) continue;
      h += "<h3>" + xml_escape(g.name) + "</h3>\n" + sensitivity_svg(*r.sensitivity, r.max_drop);
    }
    h += "</section>\n";
  }

  h += "<section id=\"metadata\">\n<h2>Metadata</h2>\n";
  for (const auto& g : groups) {
    std::vector<std::string> keys;
    for (const RunRecord* r : g.seeds)
      for (const auto& [k, v] : r->metadata)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    std::vector<std::string> header{"key"};
    for (std::size_t i = 0; i < g.seeds.size(); ++i) header.push_back(format("run %zu", i + 1));
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : keys) {
      std::vector<std::string> row{k};
      for (const RunRecord* r : g.seeds) {
        std::string value = "–";
        for (const auto& [rk, rv] : r->metadata)
          if (rk == k) value = rv;
        row.push_back(value);
      }
      rows.push_back(std::move(row));
    }
    h += "<h3>" + xml_escape(g.name) + "</h3>\n" +
         (keys.empty() ? std::string("<p class=\"note\">None given.</p>\n") : detail::html_table(header, rows));
  }
  h += "</section>\n</body>\n</html>\n";
  return h;
}

/// Writes `report_html(runs, options)` to `path`, atomically.
inline void write_report(const std::filesystem::path& path, std::span<const RunRecord> runs,
                         const ReportOptions& options = {}) {
  write_atomic(path, report_html(runs, options));
}

inline void write_report(const std::filesystem::path& path, std::initializer_list<RunRecord> runs,
                         const ReportOptions& options = {}) {
  write_report(path, std::span<const RunRecord>(runs.begin(), runs.size()), options);
}

}  // namespace dsd::io
