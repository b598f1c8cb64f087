#pragma once
/// \file
/// Random-Cut: the paper's control, pruning random connections at the same sparsity.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dsd/detail/counter_rng.hpp"
#include "dsd/pruning/policy.hpp"

namespace dsd {

/// Prunes `k` weights chosen uniformly at random, ignoring their values. The choice depends only
/// on (seed, layer name, index) through a counter-based generator, so it is bitwise identical on
/// every machine, standard library and thread count; two layers with different names get
/// independent patterns.
struct RandomCut {
  static constexpr std::string_view name = "random-cut";
  std::uint64_t seed = 0;  ///< the same seed gives the same pattern everywhere

  template <floating_scalar S, mask_storage M>
  S build_mask(std::span<const S> w, std::size_t prune, M& mask, const PruneInfo& info = {}) const {
    const std::uint64_t stream = detail::fnv1a(info.name);
    prune_lowest(w.size(), prune, mask, [&](std::size_t i) {
      return static_cast<double>(detail::random_cut_key(seed, stream, i)) * 0x1p-53;
    });
    return S{0};  // a random cut has no magnitude threshold
  }
};

}  // namespace dsd
