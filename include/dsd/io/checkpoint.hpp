#pragma once
/// \file
/// Checkpoints of a DSD run as safetensors files: each layer's weights, mask (bit-packed U8),
/// optimizer state, step count and threshold, plus where the training loop stands (`LoopState`:
/// schedule position, batch, caller bytes) and caller metadata. Written atomically; loaded
/// strictly, all-or-nothing.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/error.hpp"
#include "dsd/io/safetensors.hpp"
#include "dsd/layers.hpp"
#include "dsd/schedule/position.hpp"
#include "dsd/snapshot.hpp"

namespace dsd::io {

/// Version of the checkpoint layout this build writes and reads.
inline constexpr int checkpoint_version = 1;

namespace detail {
inline std::string key(const std::string& layer, const char* what) {
  return "dsd.layer." + layer + "." + what;
}

template <mask_storage M>
std::vector<std::uint8_t> pack_mask(const M& m) {
  std::vector<std::uint8_t> bytes((m.size() + 7) / 8, 0);
  m.for_each_kept([&](std::size_t i) { bytes[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8)); });
  return bytes;
}
}  // namespace detail

/// Where a trainer stands, saved with the layers so that any trainer resumes exactly without
/// inventing its own metadata: the schedule position to continue from, the batches of that epoch
/// already trained, and bytes of the caller's own (an RNG state, a data loader's position).
struct LoopState {
  Position position{};    ///< where `run` continues (`Position::after(ctx)` after an epoch)
  std::size_t batch = 0;  ///< batches of that epoch already trained (0 at an epoch boundary)
  std::string user{};     ///< any bytes, NULs included; stored as a U8 tensor

  friend bool operator==(const LoopState&, const LoopState&) = default;
};

namespace detail {
inline constexpr const char* loop_user_tensor = "dsd.loop.__user__";

/// A metadata value that must be a whole non-negative integer.
template <class I>
I parse_count(const File& f, const std::string& key, std::string_view what) {
  const std::string& text = f.meta(key);
  I value{};
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool negative = false;
  if constexpr (std::is_signed_v<I>) negative = value < 0;
  DSD_REQUIRE(err == std::errc{} && end == text.data() + text.size() && !text.empty() && !negative,
              io, "\"", f.path(), "\": ", what, " is \"", text, "\", not a non-negative integer");
  return value;
}

template <layer_collection C>
void write_checkpoint(const std::filesystem::path& path, C&& layers,
                      const std::map<std::string, std::string>& metadata, const LoopState* loop) {
  Writer w;
  std::vector<std::vector<std::uint8_t>> masks;  // kept alive until write()
  masks.reserve(layer_count(layers));
  std::set<std::string> names;
  for (const auto& [k, v] : metadata) {
    DSD_REQUIRE(k.rfind("dsd.", 0) != 0, invalid_argument, "metadata key \"", k,
                "\" uses the reserved prefix \"dsd.\"");
    w.metadata(k, v);
  }
  w.metadata("dsd.format", "dsd-checkpoint");
  w.metadata("dsd.version", std::to_string(checkpoint_version));
  std::vector<std::shared_ptr<const void>> staged;  // host copies of device layers, until write()
  for_each_layer(layers, [&](auto& l, std::size_t) {
    using L = std::remove_cvref_t<decltype(l)>;
    using S = typename L::scalar_type;
    DSD_REQUIRE(!l.name().empty(), invalid_argument, "cannot checkpoint a layer without a name");
    DSD_REQUIRE(names.insert(l.name()).second, invalid_argument, "two layers are named \"",
                l.name(), "\"");
    const auto add = [&](std::span<const S> weights, const auto& mask, const OptimizerState<S>& st,
                         double thr) {
      const Shape s = l.shape();
      w.add<S>(l.name(), {s.outer, s.inner}, weights);
      masks.push_back(detail::pack_mask(mask));
      w.add<std::uint8_t>(l.name() + ".__mask__", {masks.back().size()}, masks.back());
      if (!st.first.empty()) w.add<S>(l.name() + ".__state1__", {l.size()}, st.first);
      if (!st.second.empty()) w.add<S>(l.name() + ".__state2__", {l.size()}, st.second);
      // hex float: exact round trip, the same text whatever the process locale
      w.metadata(detail::key(l.name(), "threshold"), dsd::detail::to_hex_text(thr));
      w.metadata(detail::key(l.name(), "step"), std::to_string(st.step));
    };
    if constexpr (layer_space_v<L> == memory_space::host) {
      add(l.weights(), l.mask(), l.state(), l.threshold());
    } else {  // device layers: one download each, the same bytes as a host layer would write
      auto snap = std::make_shared<const snapshot_t<L>>(snapshot(l));
      staged.push_back(snap);
      add(snap->weights, snap->mask, snap->state, snap->threshold);
    }
  });
  if (loop != nullptr) {
    DSD_REQUIRE(loop->position.phase_index >= 0 && loop->position.epoch >= 0, invalid_argument,
                "loop state at phase ", loop->position.phase_index, ", epoch ",
                loop->position.epoch, ": both must be >= 0");
    DSD_REQUIRE(!names.contains(loop_user_tensor), invalid_argument, "a layer is named \"",
                loop_user_tensor, "\", which checkpoints reserve");
    w.metadata("dsd.loop.phase_index", std::to_string(loop->position.phase_index));
    w.metadata("dsd.loop.epoch", std::to_string(loop->position.epoch));
    w.metadata("dsd.loop.batch", std::to_string(loop->batch));
    w.metadata("dsd.loop.user_bytes", std::to_string(loop->user.size()));
    if (!loop->user.empty())
      w.add<std::uint8_t>(loop_user_tensor, {loop->user.size()},
                          std::span<const std::uint8_t>(
                              reinterpret_cast<const std::uint8_t*>(loop->user.data()), loop->user.size()));
  }
  w.write(path);
}
}  // namespace detail

/// Writes every layer of `layers` and `metadata` to `path` atomically. Layer names must be
/// unique and non-empty; metadata keys starting with "dsd." are reserved.
template <layer_collection C>
void save_checkpoint(const std::filesystem::path& path, C&& layers,
                     const std::map<std::string, std::string>& metadata = {}) {
  detail::write_checkpoint(path, layers, metadata, nullptr);
}

/// As above, with where the training loop stands (`read_loop_state` gives it back).
template <layer_collection C>
void save_checkpoint(const std::filesystem::path& path, C&& layers, const LoopState& loop,
                     const std::map<std::string, std::string>& metadata = {}) {
  detail::write_checkpoint(path, layers, metadata, &loop);
}

/// The loop state a checkpoint was saved with, or nothing if it was saved without one. A
/// malformed or partial loop state throws `errc::io`.
[[nodiscard]] inline std::optional<LoopState> read_loop_state(const File& f) {
  const auto& meta = f.metadata();
  if (!meta.count("dsd.loop.phase_index")) return std::nullopt;
  LoopState loop;
  loop.position.phase_index = detail::parse_count<int>(f, "dsd.loop.phase_index", "loop phase");
  loop.position.epoch = detail::parse_count<int>(f, "dsd.loop.epoch", "loop epoch");
  loop.batch = detail::parse_count<std::size_t>(f, "dsd.loop.batch", "loop batch");
  const auto bytes = detail::parse_count<std::size_t>(f, "dsd.loop.user_bytes", "loop user bytes");
  if (bytes > 0) {
    const auto user = f.read<std::uint8_t>(detail::loop_user_tensor);
    DSD_REQUIRE(user.size() == bytes, io, "\"", f.path(), "\": the loop's user bytes are ",
                user.size(), ", the metadata says ", bytes);
    loop.user.assign(reinterpret_cast<const char*>(user.data()), user.size());
  }
  return loop;
}

/// Reads the loop state of the checkpoint at `path` (see the overload taking a File).
[[nodiscard]] inline std::optional<LoopState> read_loop_state(const std::filesystem::path& path) {
  return read_loop_state(File(path));
}

namespace detail {
/// Validates `f` against every layer of `layers` and reads what they will hold, changing nothing;
/// returns the step that installs it (which cannot fail for a reason of the file). A
/// distributed load prepares on every rank, agrees, then commits.
template <layer_collection C>
[[nodiscard]] std::function<void()> prepare_load(const File& f, C& layers) {
  const auto fmt = f.metadata().find("dsd.format");
  DSD_REQUIRE(fmt != f.metadata().end() && fmt->second == "dsd-checkpoint", io, "\"", f.path(),
              "\" is a safetensors file but not a dsd checkpoint");
  DSD_REQUIRE(f.meta("dsd.version") == std::to_string(checkpoint_version), io, "\"", f.path(),
              "\" has checkpoint format version \"", f.meta("dsd.version"),
              "\"; this build reads version ", checkpoint_version);
  std::vector<std::function<void()>> commit;  // applied only once everything validated
  std::set<std::string> seen;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    DSD_REQUIRE(seen.insert(l.name()).second, invalid_argument, "two layers are named \"",
                l.name(), "\"; a checkpoint needs unique names to load into");
    using L = std::remove_cvref_t<decltype(l)>;
    using S = typename L::scalar_type;
    const std::string& name = l.name();
    const TensorInfo& t = f.info(name);
    const Shape s = l.shape();
    const std::vector<std::size_t> want{s.outer, s.inner};
    DSD_REQUIRE(t.shape == want, io, "\"", f.path(), "\": tensor \"", name, "\" has shape [",
                t.shape.size() > 0 ? t.shape[0] : 0, ", ", t.shape.size() > 1 ? t.shape[1] : 0,
                "] but layer \"", name, "\" is [", s.outer, ", ", s.inner, "]");
    auto weights = f.read<S>(name);
    const auto packed = f.read<std::uint8_t>(name + ".__mask__");
    DSD_REQUIRE(packed.size() == (l.size() + 7) / 8, io, "\"", f.path(), "\": mask of \"", name,
                "\" has ", packed.size(), " bytes, expected ", (l.size() + 7) / 8);
    if (l.size() % 8 != 0)
      DSD_REQUIRE((packed.back() >> (l.size() % 8)) == 0, io, "\"", f.path(), "\": mask of \"",
                  name, "\" has bits set past its ", l.size(), " entries");
    snapshot_mask_t<L> mask(l.size(), false);
    mask.assign([&](std::size_t i) { return ((packed[i / 8] >> (i % 8)) & 1u) != 0; });
    OptimizerState<S> state;
    for (auto [suffix, buf] :
         {std::pair{".__state1__", &state.first}, std::pair{".__state2__", &state.second}}) {
      if (!f.tensors().count(name + suffix)) continue;
      *buf = f.read<S>(name + suffix);
      DSD_REQUIRE(buf->size() == l.size(), io, "\"", f.path(), "\": optimizer state \"", name,
                  suffix, "\" has ", buf->size(), " entries, expected ", l.size());
    }
    state.step = detail::parse_count<std::int64_t>(f, detail::key(name, "step"),
                                                  "step of layer \"" + name + "\"");
    const std::string thr_text = f.meta(detail::key(name, "threshold"));
    double threshold = 0.0;
    DSD_REQUIRE(dsd::detail::parse_double(thr_text, threshold) && std::isfinite(threshold),
                io, "\"", f.path(), "\": threshold of layer \"", name, "\" is \"", thr_text,
                "\", not a finite number");
    commit.push_back([&l, w = std::move(weights), m = std::move(mask), st = std::move(state),
                      threshold]() mutable {
      restore(l, snapshot_t<L>{std::move(w), std::move(m), std::move(st), threshold});
    });
  });
  return [commit = std::move(commit)]() mutable {
    for (auto& c : commit) c();
  };
}

/// The caller's metadata of `f`: every entry outside the reserved "dsd." prefix.
inline std::map<std::string, std::string> user_metadata(const File& f) {
  std::map<std::string, std::string> user;
  for (const auto& [k, v] : f.metadata())
    if (k.rfind("dsd.", 0) != 0) user[k] = v;
  return user;
}
}  // namespace detail

/// Restores every layer of `layers` from `path` and returns the caller metadata. Everything is
/// validated before any layer changes: a missing tensor, a dtype or shape that does not match the
/// layer, a malformed mask, or an unknown format version throws `dsd::error` and leaves the layers
/// as they were.
template <layer_collection C>
std::map<std::string, std::string> load_checkpoint(const File& f, C&& layers) {
  detail::prepare_load(f, layers)();
  return detail::user_metadata(f);
}

/// Reads `path` and restores `layers` from it (see the overload taking a File).
template <layer_collection C>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, C&& layers) {
  return load_checkpoint(File(path), layers);
}

}  // namespace dsd::io
