#pragma once
/// \file
/// Data-parallel checks: after the gradient all-reduce every rank holds the same weights and
/// dsd's selection is deterministic, so masks agree without traffic. `verify_identical` proves it
/// (one digest per layer, all-reduced min and max); `broadcast_masks` makes them agree when a
/// choice depended on rank-local data (sensitivity analysis on per-rank validation shards).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/mask.hpp"

namespace dsd::dist {

namespace detail {
/// 64-bit digest of a layer: name, mask bits and weight bytes, mixed a word at a time.
template <class L>
std::uint64_t digest(const L& layer) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ layer.size();
  const auto mix = [&h](std::uint64_t x) {
    h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h = std::rotl(h * 0xff51afd7ed558ccdull, 29);
  };
  for (char c : layer.name()) mix(static_cast<unsigned char>(c));
  if constexpr (requires { layer.mask().words(); })
    for (const std::uint64_t word : layer.mask().words()) mix(word);  // tail bits are always 0
  else
    for (std::size_t i = 0; i < layer.size(); ++i) mix(layer.mask().test(i) ? 1 : 0);
  const auto w = layer.weights();
  const auto* bytes = reinterpret_cast<const unsigned char*>(w.data());
  const std::size_t n = w.size_bytes();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, bytes + i, 8);
    mix(x);
  }
  for (; i < n; ++i) mix(bytes[i]);
  return h;
}
}  // namespace detail

/// Throws `dsd::error` (invalid_argument) on every rank, naming the first layer whose mask or
/// weights differ between ranks, how many ranks disagree with rank 0 and the first of them, or
/// saying that the ranks hold different numbers of layers. Collective; when all agree it costs
/// two all-reduces of one counter per layer.
template <layer_collection C, communicator Comm>
void verify_identical(C&& layers, Comm& comm) {
  std::uint64_t n[] = {layer_count(layers)}, n_max[] = {layer_count(layers)};
  comm.all_reduce_min(n);
  comm.all_reduce_max(n_max);
  DSD_REQUIRE(n[0] == n_max[0], invalid_argument, "dist::verify_identical: ranks hold between ",
              n[0], " and ", n_max[0], " layers");
  std::vector<std::uint64_t> mine;
  std::vector<std::string> names;
  for_each_layer(layers, [&](const auto& l, std::size_t) {
    mine.push_back(detail::digest(l));
    names.push_back(l.name());
  });
  auto lo = mine, hi = mine;
  comm.all_reduce_min(lo);
  comm.all_reduce_max(hi);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (lo[i] == hi[i]) continue;
    std::uint64_t reference = mine[i];  // rank 0's digest
    comm.broadcast(std::as_writable_bytes(std::span(&reference, 1)), 0);
    const bool differs = mine[i] != reference;
    std::uint64_t differing[] = {differs ? 1u : 0u};
    std::uint64_t first[] = {differs ? static_cast<std::uint64_t>(comm.rank())
                                     : std::numeric_limits<std::uint64_t>::max()};
    comm.all_reduce_sum(differing);
    comm.all_reduce_min(first);
    DSD_THROW(invalid_argument, "dist::verify_identical: layer \"", names[i], "\" (layer ", i,
              ") differs across ranks: ", differing[0], " of ", comm.size(), " ranks (first: rank ",
              first[0], ") hold another mask or other weights than rank 0");
  }
}

/// Copies `root`'s masks (and prune thresholds) to every rank and enforces them there. Layers
/// must use `BitMask`; every rank must hold as many layers as `root`, each with as many entries
/// (weights, not mask words: 100 and 120 weights are both two words). A mismatch, or a `root`
/// outside the job, throws on every rank and changes no layer. Collective.
template <layer_collection C, communicator Comm>
void broadcast_masks(C&& layers, Comm& comm, int root = 0) {
  DSD_REQUIRE(root >= 0 && root < comm.size(), invalid_argument, "dist::broadcast_masks: root ",
              root, " is not a rank of this job of ", comm.size());  // the same on every rank
  std::vector<std::uint64_t> sizes{layer_count(layers)};
  for_each_layer(layers, [&](auto& l, std::size_t) {
    static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(l)>::mask_type, BitMask>,
                  "dsd: broadcast_masks sends BitMask words");
    sizes.push_back(l.size());
  });
  std::uint64_t counts[] = {sizes.size()}, counts_max[] = {sizes.size()};
  comm.all_reduce_min(counts);
  comm.all_reduce_max(counts_max);
  DSD_REQUIRE(counts[0] == counts_max[0], size_mismatch, "dist::broadcast_masks: ranks hold between ",
              counts[0] - 1, " and ", counts_max[0] - 1, " layers");
  auto lo = sizes, hi = sizes;
  comm.all_reduce_min(lo);
  comm.all_reduce_max(hi);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    DSD_REQUIRE(lo[i + 1] == hi[i + 1], size_mismatch, "dist::broadcast_masks: layer \"", l.name(),
                "\" (layer ", i, ") has between ", lo[i + 1], " and ", hi[i + 1],
                " weights on different ranks");
  });
  std::vector<BitMask> masks;
  std::vector<double> thresholds;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    std::vector<std::uint64_t> words(l.mask().words().begin(), l.mask().words().end());
    words.push_back(std::bit_cast<std::uint64_t>(l.threshold()));
    comm.broadcast(std::as_writable_bytes(std::span(words)), root);
    thresholds.push_back(std::bit_cast<double>(words.back()));
    words.pop_back();
    masks.push_back(BitMask::from_words(words, l.size()));
  });
  if (comm.rank() == root) return;
  for_each_layer(layers, [&](auto& l, std::size_t i) { l.set_mask(std::move(masks[i]), thresholds[i]); });
}

}  // namespace dsd::dist
