#pragma once
/// \file
/// Recipe files: a DSD run's plan (phases, lengths, rates, decays, each prune's sparsity) and its
/// exclusions, as JSON a user writes by hand and `read_recipe` loads strictly. Needs nlohmann/json.
///
/// \code{.json}
/// {
///   "name": "deepspeech1", "source": "DSD (ICLR 2017), Table 6", "optimizer": "nesterov",
///   "exclude": ["conv*"],
///   "phases": [
///     {"kind": "dense", "epochs": 50, "lr": 8e-4},
///     {"kind": "sparse", "epochs": 50, "lr": 5e-4, "prune": {"uniform": 0.5}},
///     {"kind": "redense", "epochs": 50, "lr": 3e-4}
///   ]
/// }
/// \endcode

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unordered_set>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsd/error.hpp"
#include "dsd/schedule/plan.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/layer_sparsity.hpp"
#include "dsd/threshold/uniform_sparsity.hpp"

namespace dsd::io {

/// A phase's prune as the recipe says it: one sparsity for every layer, one across all layers, or
/// one per layer name or pattern (with a fallback for the others).
struct RecipePrune {
  enum class Kind { uniform, global, layers };
  Kind kind = Kind::uniform;
  double sparsity = 0.0;                                  ///< uniform, global
  std::vector<std::pair<std::string, double>> layers{};   ///< layers: name or pattern, sparsity
  double fallback = 0.0;                                  ///< layers: the sparsity of the rest
};

/// A loaded recipe: the plan's phases (without thresholds until `plan` resolves the names) and
/// what the file says about itself.
struct Recipe {
  std::string origin;     ///< the file it came from (for messages)
  std::string name;       ///< e.g. "vgg16-iclr2017"
  std::string source;     ///< where the numbers come from (the paper's table)
  std::string version;    ///< e.g. "ICLR 2017" or "arXiv v1"; may be empty
  std::string optimizer;  ///< the recipe's optimizer, for the trainer (e.g. "sgd", "nesterov")
  std::int64_t steps_per_epoch = 0;
  std::vector<std::string> exclude;                 ///< names or patterns never pruned
  std::vector<PhasePlan> phases;                    ///< thresholds empty: see `plan`
  std::vector<std::optional<RecipePrune>> prunes;   ///< per phase: its prune, if it prunes
  std::vector<double> epochs;  ///< per phase: its length in epochs as written (0: in steps)

  /// The plan for a model whose prunable layers are `names`: every pattern resolved against
  /// them (an exclusion or per-layer entry that matches no layer is an error naming the file and
  /// field). `scale_epochs` runs the recipe's shape shorter (or longer): a whole number of epochs
  /// becomes round(epochs · scale), at least 1; a fraction of an epoch (VGG-16's 1.25) and a
  /// length in steps become round(steps · scale) steps, at least 1. A fraction needs the steps of
  /// one epoch of the user's data: `data_steps_per_epoch`, or the recipe's own `steps_per_epoch`.
  [[nodiscard]] Plan plan(const std::vector<std::string>& names, double scale_epochs = 1.0,
                          std::int64_t data_steps_per_epoch = 0) const;
};

namespace detail {

/// Whether `name` matches `pattern`: `*` any run of characters, `?` one, everything else itself.
[[nodiscard]] inline bool glob_match(std::string_view pattern, std::string_view name) {
  std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++, resume = n;
    } else if (star != std::string_view::npos) {
      p = star + 1, n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

/// Runs one of the plan's own checks (`Decay::validate`, `Plan::validate`) with the recipe's file
/// named in front of its message.
template <class Check>
void with_origin(const std::string& origin, const Check& check) {
  try {
    check();
  } catch (const dsd::error& e) {
    DSD_THROW(invalid_schedule, "recipe \"", origin, "\": ", std::string(e.what()).substr(5));
  }
}

/// A recipe as parsed: objects keep the file's key order (a prune's per-layer entries apply in it).
using Json = nlohmann::ordered_json;

/// Reads a recipe's fields, each check naming the file, the field and the value.
class RecipeReader {
 public:
  explicit RecipeReader(std::string origin) : origin_(std::move(origin)) {}

  [[nodiscard]] Recipe read(const Json& j) const {
    Recipe r;
    r.origin = origin_;
    require_object(j, "the recipe");
    only_keys(j, "the recipe",
              {"name", "source", "version", "optimizer", "steps_per_epoch", "exclude", "phases", "note"});
    r.name = string_at(j, "name", "name", true);
    r.source = string_at(j, "source", "source", true);
    r.version = string_at(j, "version", "version", false);
    r.optimizer = string_at(j, "optimizer", "optimizer", false);
    (void)string_at(j, "note", "note", false);
    if (j.contains("steps_per_epoch"))
      r.steps_per_epoch = positive_integer(j["steps_per_epoch"], "steps_per_epoch");
    if (j.contains("exclude")) {
      const auto& e = j["exclude"];
      if (!e.is_array()) fail("exclude", "must be an array of layer names or patterns, not ", shown(e));
      for (std::size_t i = 0; i < e.size(); ++i)
        r.exclude.push_back(string_value(e[i], "exclude[" + std::to_string(i) + "]"));
    }
    if (!j.contains("phases")) fail("phases", "is missing");
    const auto& phases = j["phases"];
    if (!phases.is_array() || phases.empty())
      fail("phases", "must be a non-empty array of phases, not ", shown(phases));
    int round = 0;
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const std::string at = "phases[" + std::to_string(i) + "]";
      double epochs = 0.0;
      auto [phase, prune] = read_phase(phases[i], at, round, epochs);
      if (phase.steps > 0 && r.steps_per_epoch == 0)
        fail(at + ".steps", "needs the recipe's steps_per_epoch (the steps of one epoch)");
      r.phases.push_back(std::move(phase));
      r.prunes.push_back(std::move(prune));
      r.epochs.push_back(epochs);
    }
    return r;
  }

 private:
  /// A value for a message: scalars as written, arrays and objects by their type only (printing
  /// a deeply nested value would recurse once per level).
  [[nodiscard]] static std::string shown(const Json& v) {
    return v.is_structured() ? (v.empty() ? v.dump() : "a JSON " + std::string(v.type_name())) : v.dump();
  }

  template <class... Args>
  [[noreturn]] void fail(const std::string& field, const Args&... what) const {
    DSD_THROW(invalid_schedule, "recipe \"", origin_, "\": ", field, " ", what...);
  }

  void require_object(const Json& j, const std::string& field) const {
    if (!j.is_object()) fail(field, "must be a JSON object, not ", shown(j));
  }

  void only_keys(const Json& j, const std::string& field,
                 std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : j.items()) {
      bool ok = false;
      for (const auto k : known) ok = ok || k == key;
      if (!ok) {
        std::string list;
        for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(field, "has an unknown key \"", key, "\" (known: ", list, ")");
      }
    }
  }

  [[nodiscard]] std::string string_value(const Json& v, const std::string& field) const {
    if (!v.is_string() || v.get_ref<const std::string&>().empty())
      fail(field, "must be a non-empty string, not ", shown(v));
    return v.get<std::string>();
  }

  [[nodiscard]] std::string string_at(const Json& j, const char* key,
                                      const std::string& field, bool required) const {
    if (!j.contains(key)) {
      if (required) fail(field, "is missing");
      return {};
    }
    return string_value(j[key], field);
  }

  [[nodiscard]] double number(const Json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "must be a number, not ", shown(v));
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(field, "must be finite, not ", shown(v));
    return x;
  }

  /// A positive integer, written as one (`1000`) or as a number of integral value (`1e3`).
  [[nodiscard]] std::int64_t positive_integer(const Json& v, const std::string& field) const {
    constexpr double limit = 9.0e15;  // every integer below it is exact in a double
    if (v.is_number_float()) {
      const double x = v.get<double>();
      if (!(x > 0.0 && x <= limit && x == std::floor(x)))
        fail(field, "must be a positive integer, not ", shown(v));
      return static_cast<std::int64_t>(x);
    }
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 ||
        (v.is_number_unsigned() &&
         v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())))
      fail(field, "must be a positive integer, not ", shown(v));
    return v.get<std::int64_t>();
  }

  [[nodiscard]] double sparsity(const Json& v, const std::string& field) const {
    const double s = number(v, field);
    if (!(s >= 0.0 && s < 1.0)) fail(field, shown(v), " is outside [0, 1)");
    return s;
  }

  [[nodiscard]] Decay read_decay(const Json& j, const std::string& field) const {
    require_object(j, field);
    only_keys(j, field, {"kind", "gamma", "every", "power", "final_scale"});
    Decay d;
    const std::string kind = string_at(j, "kind", field + ".kind", true);
    if (kind == "constant") d.kind = Decay::Kind::constant;
    else if (kind == "step") d.kind = Decay::Kind::step;
    else if (kind == "exponential") d.kind = Decay::Kind::exponential;
    else if (kind == "cosine") d.kind = Decay::Kind::cosine;
    else if (kind == "polynomial") d.kind = Decay::Kind::polynomial;
    else fail(field + ".kind", "\"", kind, "\" is not constant, step, exponential, cosine or polynomial");
    if (j.contains("gamma")) d.gamma = number(j["gamma"], field + ".gamma");
    if (j.contains("every")) {
      const std::int64_t every = positive_integer(j["every"], field + ".every");
      if (every > 1'000'000'000) fail(field + ".every", shown(j["every"]), " is too large");
      d.every = static_cast<int>(every);
    }
    if (j.contains("power")) d.power = number(j["power"], field + ".power");
    if (j.contains("final_scale")) d.final_scale = number(j["final_scale"], field + ".final_scale");
    with_origin(origin_, [&] { d.validate(field); });
    return d;
  }

  [[nodiscard]] RecipePrune read_prune(const Json& j, const std::string& field) const {
    require_object(j, field);
    only_keys(j, field, {"uniform", "global", "layers", "fallback"});
    RecipePrune p;
    const int kinds = int(j.contains("uniform")) + int(j.contains("global")) + int(j.contains("layers"));
    if (kinds != 1) fail(field, R"(needs exactly one of "uniform", "global" or "layers")");
    if (j.contains("fallback") && !j.contains("layers"))
      fail(field + ".fallback", "belongs to a \"layers\" prune");
    if (j.contains("uniform")) {
      p.kind = RecipePrune::Kind::uniform;
      p.sparsity = sparsity(j["uniform"], field + ".uniform");
    } else if (j.contains("global")) {
      p.kind = RecipePrune::Kind::global;
      p.sparsity = sparsity(j["global"], field + ".global");
    } else {
      p.kind = RecipePrune::Kind::layers;
      const auto& layers = j["layers"];
      if (!layers.is_object() || layers.empty())
        fail(field + ".layers", "must be a non-empty object of layer name or pattern: sparsity, not ",
             shown(layers));
      for (const auto& [key, value] : layers.items()) {
        std::string entry = field;
        entry += ".layers.";
        entry += key;
        p.layers.emplace_back(key, sparsity(value, entry));
      }
      if (j.contains("fallback")) p.fallback = sparsity(j["fallback"], field + ".fallback");
    }
    return p;
  }

  /// One phase; `epochs` receives its length in epochs as written (0 for a length in steps).
  [[nodiscard]] std::pair<PhasePlan, std::optional<RecipePrune>> read_phase(
      const Json& j, const std::string& at, int& round, double& epochs) const {
    require_object(j, at);
    only_keys(j, at, {"kind", "epochs", "steps", "lr", "decay", "prune", "prune_before", "round", "note"});
    (void)string_at(j, "note", at + ".note", false);
    PhasePlan p;
    const std::string kind = string_at(j, "kind", at + ".kind", true);
    if (kind == "dense") p.phase = Phase::dense;
    else if (kind == "sparse") p.phase = Phase::sparse;
    else if (kind == "redense") p.phase = Phase::redense;
    else fail(at + ".kind", "\"", kind, "\" is not dense, sparse or redense");
    if (j.contains("epochs") == j.contains("steps"))
      fail(at, R"(needs a length: "epochs" or "steps", one of them)");
    if (j.contains("epochs")) {  // a whole number of epochs, or a fraction (VGG-16's 1.25)
      epochs = number(j["epochs"], at + ".epochs");
      if (!(epochs > 0.0)) fail(at + ".epochs", shown(j["epochs"]), " must be > 0");
      if (epochs > 1'000'000) fail(at + ".epochs", shown(j["epochs"]), " is more than 1000000 epochs");
      if (epochs == std::floor(epochs)) p.epochs = static_cast<int>(epochs);
    } else {
      p.steps = positive_integer(j["steps"], at + ".steps");
    }
    if (!j.contains("lr")) fail(at + ".lr", "is missing");
    p.lr = number(j["lr"], at + ".lr");
    if (!(p.lr > 0.0)) fail(at + ".lr", shown(j["lr"]), " must be > 0");
    if (j.contains("decay")) p.decay = read_decay(j["decay"], at + ".decay");
    std::optional<RecipePrune> prune;
    if (p.phase == Phase::sparse) {
      p.prune_before = true;
      if (j.contains("prune_before")) {
        if (!j["prune_before"].is_boolean())
          fail(at + ".prune_before", "must be true or false, not ", shown(j["prune_before"]));
        p.prune_before = j["prune_before"].get<bool>();
      }
      if (p.prune_before && !j.contains("prune"))
        fail(at + ".prune", "is missing: a sparse phase says how much it prunes (or "
             "\"prune_before\": false to keep the model's masks)");
      if (!p.prune_before && j.contains("prune"))
        fail(at + ".prune", "is given but \"prune_before\" is false");
      if (j.contains("prune")) prune = read_prune(j["prune"], at + ".prune");
      ++round;
    } else {
      if (j.contains("prune")) fail(at + ".prune", "belongs to a sparse phase, not a ", kind, " one");
      if (j.contains("prune_before"))
        fail(at + ".prune_before", "belongs to a sparse phase, not a ", kind, " one");
      p.redense_before = p.phase == Phase::redense;
    }
    p.round = std::max(1, round);
    if (j.contains("round")) {
      const std::int64_t r = positive_integer(j["round"], at + ".round");
      if (r > 1'000'000) fail(at + ".round", shown(j["round"]), " is too large");
      p.round = static_cast<int>(r);
    }
    return {p, prune};
  }

  std::string origin_;
};

}  // namespace detail

/// Parses recipe `text` (named `origin` in messages). Every field is checked: an unknown key, a
/// wrong type, a sparsity outside [0, 1), a non-positive rate or length, a sparse phase without
/// its prune, a decay out of range are `dsd::error`s naming the origin, the field and the value.
[[nodiscard]] inline Recipe parse_recipe(std::string_view text, const std::string& origin) {
  // A key written twice in one object: JSON parsers keep one of the two silently, so a recipe
  // whose second "lr" was meant to win would run the first. Refused, naming the key. Objects keep
  // the file's key order, whose lookups are linear: an object of more keys than any recipe needs
  // is refused before it makes the parse quadratic.
  constexpr std::size_t most_keys = 1024;
  DSD_REQUIRE(text.size() <= (std::size_t{4} << 20), io, "recipe \"", origin,
              "\" is ", text.size(), " bytes; a recipe is at most 4 MiB");
  std::vector<std::unordered_set<std::string>> keys;  // per open object, the keys seen so far
  const auto no_duplicates = [&](int, detail::Json::parse_event_t event, detail::Json& parsed) {
    using E = detail::Json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      DSD_REQUIRE(keys.back().insert(key).second, invalid_schedule, "recipe \"", origin,
                  "\": the key \"", key, "\" appears twice in one object");
      DSD_REQUIRE(keys.back().size() <= most_keys, invalid_schedule, "recipe \"", origin,
                  "\": an object has more than ", most_keys, " keys");
    }
    return true;
  };
  detail::Json j;
  try {
    j = detail::Json::parse(text.begin(), text.end(), no_duplicates);
  } catch (const nlohmann::json::exception& e) {
    DSD_THROW(io, "recipe \"", origin, "\" is not valid JSON (", e.what(), ")");
  }
  return detail::RecipeReader(origin).read(j);
}

/// Loads the recipe file at `path` (see `parse_recipe`).
[[nodiscard]] inline Recipe read_recipe(const std::string& path) {
  std::error_code ec;
  DSD_REQUIRE(!std::filesystem::is_directory(path, ec), io, "recipe \"", path,
              "\" is a directory, not a recipe file");
  std::ifstream in(path, std::ios::binary);
  DSD_REQUIRE(in.good(), io, "cannot open recipe \"", path, "\"");
  std::ostringstream text;
  text << in.rdbuf();
  DSD_REQUIRE(!in.bad(), io, "cannot read recipe \"", path, "\"");
  return parse_recipe(text.str(), path);
}

inline Plan Recipe::plan(const std::vector<std::string>& names, double scale_epochs,
                         std::int64_t data_steps_per_epoch) const {
  DSD_REQUIRE(std::isfinite(scale_epochs) && scale_epochs > 0.0, invalid_argument,
              "recipe \"", origin, "\": scale_epochs ", scale_epochs, " must be finite and > 0");
  const auto matching = [&](const std::string& pattern, const std::string& field) {
    std::vector<std::string> found;
    for (const auto& n : names)
      if (detail::glob_match(pattern, n)) found.push_back(n);
    DSD_REQUIRE(!found.empty(), invalid_argument, "recipe \"", origin, "\": ", field, " \"",
                pattern, "\" matches no layer of the model (", names.size(), " layers",
                names.empty() ? "" : ", the first \"", names.empty() ? "" : names.front(),
                names.empty() ? "" : "\"", ")");
    return found;
  };
  std::vector<std::string> excluded;
  for (std::size_t i = 0; i < exclude.size(); ++i)
    for (auto& n : matching(exclude[i], "exclude[" + std::to_string(i) + "]"))
      if (std::find(excluded.begin(), excluded.end(), n) == excluded.end()) excluded.push_back(n);
  DSD_REQUIRE(data_steps_per_epoch >= 0, invalid_argument, "recipe \"", origin,
              "\": steps_per_epoch ", data_steps_per_epoch, " must be >= 0");
  // A length scaled past what a run can hold is refused, never capped: a capped phase would
  // train a different recipe than the one asked for.
  const auto scaled = [&](double n, double most, std::size_t i, const char* unit) {
    const double x = std::max(1.0, std::round(n * scale_epochs));
    DSD_REQUIRE(x <= most, invalid_argument, "recipe \"", origin, "\": phases[", i, "] is ",
                x, " ", unit, " at scale_epochs ", scale_epochs,
                ", more than ", most);
    return static_cast<std::int64_t>(x);
  };
  constexpr double most_epochs = 1'000'000, most_steps = 9.0e15;
  Plan plan;
  plan.steps_per_epoch = data_steps_per_epoch > 0 ? data_steps_per_epoch : steps_per_epoch;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    PhasePlan p = phases[i];
    const double e = epochs.at(i);
    if (p.epochs > 0) {
      p.epochs = static_cast<int>(scaled(e, most_epochs, i, "epochs"));
    } else if (e > 0) {
      DSD_REQUIRE(plan.steps_per_epoch > 0, invalid_argument, "recipe \"", origin, "\": phases[",
                  i, "].epochs ", e, " is a fraction of an epoch: it needs the steps of one epoch "
                  "of your data (steps_per_epoch)");
      p.steps = scaled(e * static_cast<double>(plan.steps_per_epoch), most_steps, i, "steps");
    }
    if (p.steps > 0 && e == 0) p.steps = scaled(static_cast<double>(p.steps), most_steps, i, "steps");
    if (const auto& prune = prunes[i]) {
      switch (prune->kind) {
        case RecipePrune::Kind::uniform:
          p.thresholds = UniformSparsity{.sparsity = prune->sparsity, .exclude = excluded};
          break;
        case RecipePrune::Kind::global:
          p.thresholds = GlobalSparsity{.sparsity = prune->sparsity, .exclude = excluded};
          break;
        case RecipePrune::Kind::layers: {
          LayerSparsity by_name{.sparsity = {}, .fallback = prune->fallback, .exclude = excluded};
          for (const auto& n : names) by_name.sparsity[n] = prune->fallback;
          const std::string field = "phases[" + std::to_string(i) + "].prune.layers.";
          for (const auto& [pattern, s] : prune->layers)
            for (const auto& n : matching(pattern, field + pattern)) by_name.sparsity[n] = s;
          p.thresholds = std::move(by_name);
          break;
        }
      }
    }
    plan.phases.push_back(std::move(p));
  }
  detail::with_origin(origin, [&] { plan.validate(); });
  return plan;
}

}  // namespace dsd::io
