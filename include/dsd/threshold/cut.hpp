#pragma once
/// \file
/// `Cut`: what a threshold policy decides for a collection of layers.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsd {

/// Where a magnitude cut found across layers fell in one layer. Keys are the layer's magnitude
/// keys (`detail::magnitude_key`) widened to 64 bits.
struct LayerCut {
  std::uint64_t key = 0;      ///< the cut key: keys below it are pruned
  std::uint64_t ties = 0;     ///< keys equal to it that this layer prunes, its lowest indices
  std::uint64_t largest = 0;  ///< the largest key this layer prunes (its threshold), 0 if none
};

/// A threshold policy's decision: how many weights each layer loses, in collection order, and,
/// when the policy found the magnitude cut itself (GlobalSparsity: one key across every layer),
/// where the cut fell in each layer, so that a Keepmax-Cut prune builds each mask from it instead
/// of selecting again. `at` is empty or holds one entry per layer; it is only a shortcut, never a
/// different answer: the masks built from it are those the per-layer select gives for `counts`.
struct Cut {
  std::vector<std::size_t> counts;
  std::vector<LayerCut> at{};
};

}  // namespace dsd
