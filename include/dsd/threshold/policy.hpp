#pragma once
/// \file
/// The threshold-policy contract: how many weights each layer of a collection loses.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <string>
#include <tuple>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/threshold/cut.hpp"

namespace dsd {

/// A threshold policy maps a layer collection to its `Cut`: the number of weights to prune in
/// each layer (in collection order) and, for a policy that finds a magnitude cut across layers,
/// where it fell. The pruning policy then decides which weights. A policy gives either
/// `cut(layers)` or, when it only counts, `prune_counts(layers)` (a cut without a key).
template <class P, class C>
concept threshold_policy = layer_collection<C> && (requires(const P& p, C& layers) {
  { p.cut(layers) } -> std::convertible_to<Cut>;
} || requires(const P& p, C& layers) {
  { p.prune_counts(layers) } -> std::convertible_to<std::vector<std::size_t>>;
});

namespace detail {
/// Whether `thresholds` excludes the layer called `name` (a policy with an `exclude` list:
/// UniformSparsity, GlobalSparsity). A prune leaves an excluded layer untouched: its mask, its
/// weights and its state stay as they were, and its weights are not even checked for NaN.
template <class P>
[[nodiscard]] bool excludes(const P& thresholds, const std::string& name) {
  if constexpr (requires { thresholds.exclude.begin(); })
    return std::find(thresholds.exclude.begin(), thresholds.exclude.end(), name) !=
           thresholds.exclude.end();
  else
    return false;
}

/// The cut `thresholds` decides for `layers`, checked to hold one count (and, when it has one,
/// one position) per layer.
template <class P, layer_collection C>
  requires threshold_policy<P, C>
[[nodiscard]] Cut cut_of(const P& thresholds, C& layers) {
  Cut cut;
  if constexpr (requires { thresholds.cut(layers); })
    cut = thresholds.cut(layers);
  else
    cut.counts = thresholds.prune_counts(layers);
  const std::size_t n = layer_count(layers);
  DSD_REQUIRE(cut.counts.size() == n && (cut.at.empty() || cut.at.size() == n), size_mismatch,
              "threshold policy returned ", cut.counts.size(), " prune counts and ", cut.at.size(),
              " cut positions for ", n, " layers");
  return cut;
}
}  // namespace detail

}  // namespace dsd
