#pragma once
/// \file
/// The threshold-policy contract: how many weights each layer of a collection loses.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <string>
#include <tuple>
#include <vector>

#include "dsd/layers.hpp"

namespace dsd {

/// A threshold policy maps a layer collection to the number of weights to prune in each layer
/// (in collection order). The pruning policy then decides which ones.
template <class P, class C>
concept threshold_policy = layer_collection<C> && requires(const P& p, C& layers) {
  { p.prune_counts(layers) } -> std::convertible_to<std::vector<std::size_t>>;
};

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
}  // namespace detail

}  // namespace dsd
