#pragma once
/// \file
/// Keepmax-Cut: the paper's magnitude pruning.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "dsd/pruning/policy.hpp"

namespace dsd {

/// Keeps the largest |w| and prunes the `k` smallest. Among equal magnitudes at the threshold,
/// lower indices are pruned first, so the count is exact even when all weights are equal.
struct KeepmaxCut {
  static constexpr std::string_view name = "keepmax-cut";

  template <floating_scalar S, mask_storage M>
  S build_mask(std::span<const S> w, std::size_t prune, M& mask, const PruneInfo& = {}) const {
    if (prune == 0) {
      mask.fill(true);
      return S{0};
    }
    // Magnitude keys (the bits of |w|) order like |w| and cost one AND.
    const auto key = detail::prune_lowest_keys<detail::key_type<S>>(
        w.size(), std::min(prune, w.size()), mask,
        [w](std::size_t i) noexcept { return detail::magnitude_key(w[i]); });
    return detail::magnitude_from_key<S>(key);
  }
};

}  // namespace dsd
