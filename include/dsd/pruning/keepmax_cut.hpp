#pragma once
/// \file
/// Keepmax-Cut: the paper's magnitude pruning.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string_view>

#include "dsd/pruning/policy.hpp"
#include "dsd/threshold/cut.hpp"

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

namespace detail {
/// Keepmax-Cut at a cut a threshold policy already found (`Cut::at`, GlobalSparsity): the mask
/// follows from the cut key and the layer's ties at it without another select; the same mask and
/// threshold as `KeepmaxCut` for the same count. The cut may come from a user's policy, so it is
/// checked: a key wider than the layer's keys, more ties than weights, or a mask that prunes
/// another number than the layer's count is refused naming the layer, and the threshold is the
/// largest magnitude the mask pruned, found in one more pass. `trusted` (dsd's own
/// GlobalSparsity, whose tally found `LayerCut::largest`) skips that pass.
struct KeepmaxAt {
  static constexpr std::string_view name = "keepmax-cut";
  const LayerCut& at;  // the collection's cut outlives the prune
  bool trusted = false;

  template <floating_scalar S, mask_storage M>
  S build_mask(std::span<const S> w, std::size_t prune, M& mask, const PruneInfo& info = {}) const {
    if (prune == 0) {
      mask.fill(true);
      return S{0};
    }
    using K = key_type<S>;
    DSD_REQUIRE(at.key <= std::numeric_limits<K>::max() && at.ties <= w.size(), invalid_argument,
                "the cut given for layer \"", info.name, "\" (key ", at.key, ", ties ", at.ties,
                ") does not fit its ", w.size(), " weights of ", sizeof(K) * 8, "-bit keys");
    const K key = static_cast<K>(at.key);
    const auto key_at = [w](std::size_t i) noexcept { return magnitude_key(w[i]); };
    assign_cut_mask(w.size(), key_at, key, static_cast<std::size_t>(at.ties), mask);
    const std::size_t pruned = w.size() - mask.count();
    DSD_REQUIRE(pruned == prune, invalid_argument, "the cut given for layer \"", info.name,
                "\" (key ", at.key, ", ties ", at.ties, ") prunes ", pruned, " of its ", w.size(),
                " weights; its count says ", prune);
    if (trusted)
      return magnitude_from_key<S>(at.ties > 0 ? key : static_cast<K>(at.largest));
    K top = 0;  // the largest pruned key
    for (std::size_t i = 0; i < w.size(); ++i) {
      const K k = key_at(i);
      top = std::max(top, mask.test(i) ? K{0} : k);
    }
    return magnitude_from_key<S>(top);
  }
};
}  // namespace detail

}  // namespace dsd
