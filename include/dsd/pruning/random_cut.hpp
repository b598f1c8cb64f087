#pragma once
/// \file
/// Random-Cut: the paper's control, pruning random connections at the same sparsity.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dsd/detail/counter_rng.hpp"
#include "dsd/error.hpp"
#include "dsd/pruning/policy.hpp"

namespace dsd {

/// Prunes `k` weights chosen uniformly at random, ignoring their values. The choice depends only
/// on (seed, layer name, index) through a counter-based generator, so it is bitwise identical on
/// every machine, standard library and thread count; two layers with different names get
/// independent patterns. The rule that keeps patterns independent: a layer must have a name
/// (an unnamed layer is an error), and `prune(layers, ...)` requires the names to be unique.
struct RandomCut {
  static constexpr std::string_view name = "random-cut";
  /// The layer name keys the random stream (see `prune(layers, ...)`'s unique-name check).
  static constexpr bool keyed_by_name = true;
  std::uint64_t seed = 0;  ///< the same seed gives the same pattern everywhere

  /// The random stream of the layer called `layer` (every backend's rule); an unnamed layer is
  /// refused, since unnamed layers of one size would all get the same pattern.
  static std::uint64_t stream_for(std::string_view layer) {
    DSD_REQUIRE(!layer.empty(), invalid_argument,
                "RandomCut needs a named layer: its random stream is keyed by the name, so unnamed "
                "layers of one size would all get the same pattern");
    return detail::fnv1a(layer);
  }

  template <floating_scalar S, mask_storage M>
  S build_mask(std::span<const S> w, std::size_t prune, M& mask, const PruneInfo& info = {}) const {
    const std::uint64_t stream = stream_for(info.name);
    if (prune == 0) {
      mask.fill(true);
      return S{0};
    }
    // Ranked by the 53-bit integer keys themselves (the score is key * 2^-53, exactly, so the
    // order and the ties are the same): no conversion and no NaN check in the select's passes,
    // which prune_lowest needs for scores of unknown origin and which cost this policy 2x.
    (void)detail::prune_lowest_keys<std::uint64_t>(
        w.size(), std::min(prune, w.size()), mask,
        [&](std::size_t i) noexcept { return detail::random_cut_key(seed, stream, i); });
    return S{0};  // a random cut has no magnitude threshold
  }
};

}  // namespace dsd
