#pragma once
/// \file
/// `prune`: build a layer's mask with a pruning policy and enforce it.

#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string_view>

#include "dsd/detail/finite.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/masked.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/policy.hpp"
#include "dsd/threshold/prune_count.hpp"

namespace dsd {

/// Validates a prune of exactly `count` weights of `layer` by `policy` and builds its mask without
/// touching the layer; returns the commit that installs it (and the layer's statistics). Nothing
/// that can fail for a reason of the data is left for the commit, so a collection prune can build
/// every layer's mask first and change no layer when one of them fails. This one takes host
/// layers; a backend provides it for its own (hook 3 of dsd/backend/contract.hpp).
template <class Policy = KeepmaxCut, masked_parameter L>
  requires(layer_space_v<L> == memory_space::host)
[[nodiscard]] std::function<LayerStats()> prepare_prune(L& layer, std::size_t count,
                                                        const Policy& policy = {}) {
  using S = typename L::scalar_type;
  using M = typename L::mask_type;
  static_assert(pruning_policy<Policy, S, M>,
                "dsd: a pruning policy needs `static constexpr std::string_view name` and a const "
                "`build_mask(std::span<const S> w, std::size_t prune, Mask& mask, const "
                "dsd::PruneInfo&)` that keeps exactly w.size() - prune entries");
  const std::span<const S> w = layer.weights();
  DSD_REQUIRE(count <= w.size(), invalid_argument, "cannot prune ", count, " weights of layer \"",
              layer.name(), "\", which has ", w.size());
  detail::require_finite(w, layer.name());
  M mask(w.size(), true);
  double threshold = 0.0;
  const PruneInfo info{layer.name(), layer.shape()};
  if constexpr (requires { static_cast<double>(policy.build_mask(w, count, mask, info)); })
    threshold = static_cast<double>(policy.build_mask(w, count, mask, info));
  else
    policy.build_mask(w, count, mask, info);
  DSD_REQUIRE(mask.count() == w.size() - count, invalid_argument, "pruning policy \"", Policy::name,
              "\" kept ", mask.count(), " of the ", w.size(), " weights of layer \"", layer.name(),
              "\"; expected exactly ", w.size() - count);
  return [&layer, m = std::move(mask), threshold]() mutable {
    layer.set_mask(std::move(m), threshold);
    return layer.stats();
  };
}

/// Prunes exactly `count` weights of `layer` chosen by `policy`, replacing any previous mask;
/// weights and optimizer state at pruned positions become exactly zero. Throws on NaN/Inf
/// weights, on `count` > size, and if the policy does not keep exactly size - count weights; the
/// layer is unchanged when it throws.
template <class Policy = KeepmaxCut, masked_parameter L>
LayerStats prune_exactly(L& layer, std::size_t count, const Policy& policy = {}) {
  return prepare_prune(layer, count, policy)();
}

/// Prunes round(sparsity * size) weights of `layer` chosen by `policy` (default Keepmax-Cut).
/// Throws unless 0 <= sparsity < 1.
template <class Policy = KeepmaxCut, masked_parameter L>
LayerStats prune(L& layer, double sparsity, const Policy& policy = {}) {
  return prune_exactly(layer, prune_count(layer.size(), sparsity, layer.name()), policy);
}

/// W = W ⊙ Mask for one layer (use after your own optimizer's step).
template <masked_parameter L>
void enforce(L& layer) {
  layer.enforce();
}

/// Removes a layer's mask; pruned weights and their optimizer state restart at zero.
template <masked_parameter L>
void redense(L& layer) {
  layer.redense();
}

}  // namespace dsd
