#pragma once
/// \file
/// The tie rule of a global cut, written once for the host, CUDA and sharded paths: of the `k`
/// weights a cut across layers prunes, every one whose key is below the cut key goes, and of those
/// equal to it as many as are still needed, from earlier layers first (within a layer, lower
/// indices first; across the ranks of a sharded layer, lower ranks first).

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dsd/config.hpp"
#include "dsd/error.hpp"
#include "dsd/threshold/cut.hpp"

namespace dsd::detail {

/// Splits `need` ties at the cut key over the layers in order, each layer giving at most its
/// `equal[s]` keys equal to the key: writes `ties[s]` and returns the ties no layer could give
/// (0 for a consistent cut). Host-device code: the CUDA path's host side runs the same function
/// the CPU suite checks.
DSD_HOST_DEVICE constexpr std::uint64_t split_cut_ties(const std::uint64_t* equal,
                                                       std::size_t layers, std::uint64_t need,
                                                       std::uint64_t* ties) noexcept {
  for (std::size_t s = 0; s < layers; ++s) {
    ties[s] = equal[s] < need ? equal[s] : need;
    need -= ties[s];
  }
  return need;
}

/// Per-layer ties pruned by a global cut of `k` keys, from each layer's count of keys below the
/// cut key (`less`) and equal to it (`equal`): the rule above. Throws (backend: the select that
/// found the key disagrees with the counts) unless sum(less) <= k <= sum(less) + sum(equal).
inline std::vector<std::uint64_t> global_cut_ties(std::span<const std::uint64_t> less,
                                                  std::span<const std::uint64_t> equal,
                                                  std::uint64_t k) {
  DSD_REQUIRE(less.size() == equal.size(), size_mismatch, "global cut: ", less.size(),
              " layers of keys below the cut but ", equal.size(), " of keys equal to it");
  std::uint64_t below = 0;
  for (const std::uint64_t n : less) below += n;
  DSD_REQUIRE(below <= k, backend, "global cut of ", k, " weights: ", below,
              " keys lie below the cut key; the selection is inconsistent");
  std::vector<std::uint64_t> ties(less.size());
  const std::uint64_t unplaced = split_cut_ties(equal.data(), equal.size(), k - below, ties.data());
  DSD_REQUIRE(unplaced == 0, backend, "global cut of ", k, " weights: ", unplaced,
              " more than the keys at the cut key; the selection is inconsistent");
  return ties;
}

/// Per-layer prune counts of a global cut: less[s] + ties[s] (see global_cut_ties).
inline std::vector<std::size_t> global_cut_counts(std::span<const std::uint64_t> less,
                                                  std::span<const std::uint64_t> equal,
                                                  std::uint64_t k) {
  const std::vector<std::uint64_t> ties = global_cut_ties(less, equal, k);
  std::vector<std::size_t> counts(less.size());
  for (std::size_t s = 0; s < counts.size(); ++s)
    counts[s] = static_cast<std::size_t>(less[s] + ties[s]);
  return counts;
}

/// The cut of `k` keys across layers at `key` (the k-th lowest of all), from each layer's count of
/// keys below it (`less`), equal to it (`equal`) and its largest key below it (`below`, 0 when
/// none): per layer less + ties weights, and where the cut fell (the rule above).
inline Cut global_cut(std::uint64_t key, std::span<const std::uint64_t> less,
                      std::span<const std::uint64_t> equal, std::span<const std::uint64_t> below,
                      std::uint64_t k) {
  DSD_REQUIRE(below.size() == less.size(), size_mismatch, "global cut: ", less.size(),
              " layers of keys below the cut but ", below.size(), " largest keys below it");
  const std::vector<std::uint64_t> ties = global_cut_ties(less, equal, k);
  Cut cut{std::vector<std::size_t>(less.size()), std::vector<LayerCut>(less.size())};
  for (std::size_t s = 0; s < less.size(); ++s) {
    cut.counts[s] = static_cast<std::size_t>(less[s] + ties[s]);
    cut.at[s] = {key, ties[s], ties[s] > 0 ? key : below[s]};
  }
  return cut;
}

}  // namespace dsd::detail
