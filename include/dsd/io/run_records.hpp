#pragma once
/// \file
/// Run records on disk (JSON): what a trainer's `--report-data` writes, so that the runs of
/// several processes (the seeds of an experiment, a baseline run elsewhere) can be drawn in one
/// report later (`write_report(path, read_run_records(file))`). Written atomically; read
/// strictly (a missing or mistyped field is an `errc::io` naming the file and the field).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/io/atomic_file.hpp"
#include "dsd/io/run_recorder.hpp"

namespace dsd::io {

namespace detail {

using RecordJson = nlohmann::ordered_json;

inline Phase phase_from(const std::string& name) {
  for (const Phase p : {Phase::dense, Phase::sparse, Phase::redense})
    if (to_string(p) == name) return p;
  DSD_THROW(io, "unknown phase \"", dsd::detail::printable(name), "\" (dense, sparse or re-dense)");
}

/// A double as JSON: numbers stay numbers, a NaN or infinity (JSON has none) is written as a
/// string "nan", "inf" or "-inf".
inline RecordJson number(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

inline double number_from(const RecordJson& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  DSD_THROW(io, "\"", dsd::detail::printable(s), "\" is not a number");
}

/// An integer field of type T, checked: a fraction, a string or a value out of T's range is an
/// error, never a silent conversion.
template <class T>
T integral(const RecordJson& j) {
  DSD_REQUIRE(j.is_number_integer(), io, "expected an integer, found ", j.dump().substr(0, 40));
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    DSD_REQUIRE(v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max()), io, v, " is out of range");
    return static_cast<T>(v);
  }
  const auto v = j.get<std::int64_t>();
  DSD_REQUIRE(std::is_signed_v<T> && v >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                  v <= static_cast<std::int64_t>(std::numeric_limits<T>::max()),
              io, v, " is out of range");
  return static_cast<T>(v);
}

/// A count or index: an integer from 0 to `limit` (the default leaves room for the report's
/// arithmetic on epochs, rounds and phase indices).
template <class T>
T bounded(const RecordJson& j, std::uint64_t limit = std::uint64_t{1} << 30) {
  const auto v = integral<std::uint64_t>(j);
  DSD_REQUIRE(v <= limit, io, v, " is out of range (0 to ", limit, ")");
  return static_cast<T>(v);
}

/// The array `key` of object `j`: null, an object or a scalar is an error, never read as empty.
inline const RecordJson& array_at(const RecordJson& j, const char* key) {
  const RecordJson& a = j.at(key);
  DSD_REQUIRE(a.is_array(), io, "\"", key, "\" must be an array, found ", a.type_name());
  return a;
}

/// A [key, value] pair of a metadata or results array.
inline const RecordJson& pair_at(const RecordJson& kv, const char* key) {
  DSD_REQUIRE(kv.is_array() && kv.size() == 2, io, "each entry of \"", key, "\" must be a [name, value] pair");
  return kv;
}

inline RecordJson to_json(const RunRecord& r) {
  RecordJson j;
  j["name"] = r.name;
  j["metadata"] = RecordJson::array();
  for (const auto& [k, v] : r.metadata) j["metadata"].push_back({k, v});
  j["results"] = RecordJson::array();
  for (const auto& [k, v] : r.results) j["results"].push_back({k, number(v)});
  j["schedule"] = RecordJson::array();
  for (const ScheduleRow& s : r.schedule)
    j["schedule"].push_back({{"phase", to_string(s.phase)}, {"round", s.round}, {"epochs", s.epochs},
                             {"steps", s.steps}, {"lr", number(s.lr)}, {"decay", s.decay},
                             {"before", s.before}});
  j["epochs"] = RecordJson::array();
  for (const EpochRecord& e : r.epochs)
    j["epochs"].push_back({{"phase_index", e.phase_index}, {"phase", to_string(e.phase)},
                           {"round", e.round}, {"global_epoch", e.global_epoch}, {"steps", e.steps},
                           {"lr", number(e.lr)}, {"loss", number(e.loss)},
                           {"accuracy", number(e.accuracy)}, {"sparsity", number(e.sparsity)},
                           {"seconds", number(e.seconds)}});
  j["boundaries"] = RecordJson::array();
  for (const Boundary& b : r.boundaries) {
    RecordJson layers = RecordJson::array();
    for (const WeightHistogram& h : b.layers)
      layers.push_back({{"layer", h.layer}, {"range", number(h.range)}, {"counts", h.counts},
                        {"pruned", h.pruned}, {"below", h.below}, {"above", h.above}});
    j["boundaries"].push_back({{"phase_index", b.phase_index}, {"phase", to_string(b.phase)},
                               {"round", b.round}, {"opening", b.opening}, {"layers", layers}});
  }
  j["phases"] = RecordJson::array();
  for (const PhaseReport& p : r.phases) {
    RecordJson layers = RecordJson::array();
    for (const LayerReport& l : p.layers)
      layers.push_back({{"name", l.name}, {"size", l.size}, {"kept", l.kept},
                        {"sparsity", number(l.sparsity)}, {"threshold", number(l.threshold)},
                        {"changed", l.changed}});
    j["phases"].push_back({{"phase", to_string(p.phase)}, {"round", p.round}, {"epochs", p.epochs},
                           {"steps", p.steps}, {"lr", number(p.lr)},
                           {"accuracy_start", number(p.accuracy_start)},
                           {"accuracy_end", number(p.accuracy_end)}, {"seconds", number(p.seconds)},
                           {"weight_sparsity", number(p.weight_sparsity)}, {"layers", layers}});
  }
  if (r.sensitivity) {
    RecordJson points = RecordJson::array();
    for (const auto& p : r.sensitivity->points)
      points.push_back({{"layer", p.layer}, {"sparsity", number(p.sparsity)}, {"accuracy", number(p.accuracy)}});
    j["sensitivity"] = {{"baseline", number(r.sensitivity->baseline)}, {"max_drop", number(r.max_drop)},
                        {"points", points}};
  }
  return j;
}

inline std::vector<std::uint64_t> counts(const RecordJson& j) {
  DSD_REQUIRE(j.is_array() && j.size() <= (std::size_t{1} << 24), io, "histogram counts must be an array of at most 2^24 bins");
  std::vector<std::uint64_t> out;
  out.reserve(j.size());
  for (const auto& c : j) out.push_back(integral<std::uint64_t>(c));
  return out;
}

inline RunRecord from_json(const RecordJson& j) {
  RunRecord r;
  r.name = j.at("name").get<std::string>();
  for (const auto& kv : array_at(j, "metadata"))
    r.metadata.emplace_back(pair_at(kv, "metadata").at(0).get<std::string>(), kv.at(1).get<std::string>());
  for (const auto& kv : array_at(j, "results"))
    r.results.emplace_back(pair_at(kv, "results").at(0).get<std::string>(), number_from(kv.at(1)));
  for (const auto& s : array_at(j, "schedule"))
    r.schedule.push_back({phase_from(s.at("phase").get<std::string>()), bounded<int>(s.at("round")),
                          bounded<int>(s.at("epochs")), bounded<std::int64_t>(s.at("steps"), std::uint64_t{1} << 62),
                          number_from(s.at("lr")), s.at("decay").get<std::string>(),
                          s.at("before").get<std::string>()});
  for (const auto& e : array_at(j, "epochs"))
    r.epochs.push_back({bounded<int>(e.at("phase_index")), phase_from(e.at("phase").get<std::string>()),
                        bounded<int>(e.at("round")), bounded<int>(e.at("global_epoch")),
                        bounded<std::int64_t>(e.at("steps"), std::uint64_t{1} << 62), number_from(e.at("lr")),
                        number_from(e.at("loss")), number_from(e.at("accuracy")),
                        number_from(e.at("sparsity")), number_from(e.at("seconds"))});
  for (const auto& b : array_at(j, "boundaries")) {
    Boundary out{bounded<int>(b.at("phase_index")), phase_from(b.at("phase").get<std::string>()),
                 bounded<int>(b.at("round")), b.at("opening").get<bool>(), {}};
    for (const auto& h : array_at(b, "layers")) {
      WeightHistogram w{h.at("layer").get<std::string>(), number_from(h.at("range")),
                        counts(h.at("counts")), integral<std::uint64_t>(h.at("pruned")),
                        integral<std::uint64_t>(h.at("below")), integral<std::uint64_t>(h.at("above"))};
      DSD_REQUIRE(!w.counts.empty() && w.range >= min_range && w.range <= max_range, io,
                  "the histogram of layer \"", dsd::detail::printable(w.layer), "\" has ", w.counts.size(),
                  " bins over range ", w.range, "; it needs at least one bin and a range within [1e-300, 1e300]");
      std::uint64_t total = 0;  // every count and their sum below 2^62: kept() + pruned cannot wrap
      for (const std::uint64_t c : w.counts) total += std::min(c, std::uint64_t{1} << 62);
      for (const std::uint64_t c : {w.pruned, w.below, w.above}) total += std::min(c, std::uint64_t{1} << 62);
      DSD_REQUIRE(total < (std::uint64_t{1} << 62), io, "the histogram of layer \"", dsd::detail::printable(w.layer),
                  "\" counts 2^62 weights or more");
      out.layers.push_back(std::move(w));
    }
    r.boundaries.push_back(std::move(out));
  }
  for (const auto& p : array_at(j, "phases")) {
    PhaseReport out;
    out.phase = phase_from(p.at("phase").get<std::string>());
    out.round = bounded<int>(p.at("round"));
    out.epochs = bounded<int>(p.at("epochs"));
    out.steps = bounded<std::int64_t>(p.at("steps"), std::uint64_t{1} << 62);
    out.lr = number_from(p.at("lr"));
    out.accuracy_start = number_from(p.at("accuracy_start"));
    out.accuracy_end = number_from(p.at("accuracy_end"));
    out.seconds = number_from(p.at("seconds"));
    out.weight_sparsity = number_from(p.at("weight_sparsity"));
    for (const auto& l : array_at(p, "layers")) {
      LayerReport lr;
      lr.name = l.at("name").get<std::string>();
      lr.size = bounded<std::size_t>(l.at("size"), std::uint64_t{1} << 62);
      lr.kept = bounded<std::size_t>(l.at("kept"), std::uint64_t{1} << 62);
      lr.sparsity = number_from(l.at("sparsity"));
      lr.threshold = number_from(l.at("threshold"));
      lr.changed = bounded<std::size_t>(l.at("changed"), std::uint64_t{1} << 62);
      DSD_REQUIRE(lr.kept <= lr.size && lr.changed <= lr.size, io, "layer \"", dsd::detail::printable(lr.name),
                  "\" keeps ", lr.kept, " and changed ", lr.changed, " of ", lr.size, " weights");
      out.layers.push_back(std::move(lr));
    }
    r.phases.push_back(std::move(out));
  }
  if (j.contains("sensitivity")) {
    const auto& s = j.at("sensitivity");
    SensitivityTable t;
    t.baseline = number_from(s.at("baseline"));
    r.max_drop = number_from(s.at("max_drop"));
    DSD_REQUIRE(std::isfinite(r.max_drop) && r.max_drop >= 0.0, io, "the sensitivity table's max_drop ",
                r.max_drop, " must be finite and >= 0");
    for (const auto& p : array_at(s, "points"))
      t.points.push_back({p.at("layer").get<std::string>(), number_from(p.at("sparsity")),
                          number_from(p.at("accuracy"))});
    r.sensitivity = std::move(t);
  }
  return r;
}

}  // namespace detail

/// The records as the JSON `write_run_records` writes: `{"dsd_run_records": 1, "runs": [...]}`.
[[nodiscard]] inline std::string run_records_json(std::span<const RunRecord> runs) {
  detail::RecordJson j = {{"dsd_run_records", 1}, {"runs", detail::RecordJson::array()}};
  for (const RunRecord& r : runs) j["runs"].push_back(detail::to_json(r));
  // Text that is not valid UTF-8 (a name from a Latin-1 command line) is written with U+FFFD
  // in place of each bad byte: JSON is UTF-8, and a record is never lost to one name.
  return j.dump(1, ' ', false, detail::RecordJson::error_handler_t::replace) + "\n";
}

/// Writes `runs` to `path` as JSON, atomically.
inline void write_run_records(const std::filesystem::path& path, std::span<const RunRecord> runs) {
  write_atomic(path, run_records_json(runs));
}

/// Parses what `run_records_json` wrote; `origin` names the text in errors.
[[nodiscard]] inline std::vector<RunRecord> parse_run_records(std::string_view text,
                                                              const std::string& origin = "run records") {
  std::vector<RunRecord> runs;
  std::string where;  // the run being read, once the file's frame is accepted
  try {
    const auto j = detail::RecordJson::parse(text);
    DSD_REQUIRE(j.is_object() && j.contains("dsd_run_records") && j.at("dsd_run_records") == 1 &&
                    j.contains("runs") && j.at("runs").is_array(),
                io, "not a dsd run records file (version 1: {\"dsd_run_records\": 1, \"runs\": [...]})");
    for (const auto& r : j.at("runs")) {
      where = "run " + std::to_string(runs.size() + 1) + ": ";
      runs.push_back(detail::from_json(r));
    }
  } catch (const dsd::error& e) {
    DSD_THROW(io, "\"", dsd::detail::printable(origin), "\": ", where, std::string(e.what()).substr(5));
  } catch (const std::exception& e) {  // nlohmann: a parse error, a missing or mistyped field
    DSD_THROW(io, "\"", dsd::detail::printable(origin), "\": ", where, e.what());
  }
  return runs;
}

/// Reads the run records of `path`.
[[nodiscard]] inline std::vector<RunRecord> read_run_records(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  DSD_REQUIRE(in && !std::filesystem::is_directory(path), io, "cannot read run records \"", path.string(), "\"");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_run_records(text.str(), path.string());
}

}  // namespace dsd::io
