#pragma once
/// \file
/// The count rule of the threshold policies that give each layer a sparsity by its name
/// (UniformSparsity, LayerSparsity), shared by prune() on whole layers and dist::prune on shards
/// (there with each tensor's global size).

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/threshold/prune_count.hpp"

namespace dsd::detail {

/// A policy with `of(name)`, the sparsity of the layer called `name`, and `names()`, the layer
/// names it refers to (each must name a layer of the collection pruned).
template <class T>
concept sparsity_by_name = requires(const T& t, const std::string& name) {
  { t.of(name) } -> std::convertible_to<double>;
  { t.names() } -> std::convertible_to<std::vector<std::string>>;
};

/// round(of(name) * size) for every layer, `size_of(layer, index)` giving its size; `what` names
/// the policy in the error for an unknown name.
template <layer_collection C, sparsity_by_name P, class SizeOf>
[[nodiscard]] std::vector<std::size_t> prune_counts_by_name(C& layers, const P& policy,
                                                            std::string_view what,
                                                            SizeOf size_of) {
  require_known_names(layers, policy.names(), what);
  std::vector<std::size_t> counts;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    counts.push_back(prune_count(size_of(l, i), policy.of(l.name()), l.name()));
  });
  return counts;
}

}  // namespace dsd::detail
