#pragma once
/// \file
/// The threshold-policy contract: how many weights each layer of a collection loses.

#include <concepts>
#include <cstddef>
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

}  // namespace dsd
