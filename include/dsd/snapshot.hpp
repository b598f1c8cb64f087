#pragma once
/// \file
/// A host copy of everything a wrapped parameter holds (weights, mask, optimizer state,
/// threshold), and putting it back: what checkpoints and sensitivity analysis save and restore.
/// For host layers it copies; a backend provides `download_snapshot(layer)` and
/// `upload_snapshot(layer, snapshot)` for its device layers (found by argument-dependent lookup).

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/mask.hpp"
#include "dsd/masked.hpp"
#include "dsd/optimizer_state.hpp"

namespace dsd {

/// The host mask type a snapshot of `L` holds: its own for host layers, `BitMask` for device ones.
template <masked_parameter L>
using snapshot_mask_t = std::conditional_t<layer_space_v<L> == memory_space::host,
                                           typename std::remove_cvref_t<L>::mask_type, BitMask>;

/// A host copy of one parameter.
template <class S, class M = BitMask>
struct LayerSnapshot {
  std::vector<S> weights;
  M mask;
  OptimizerState<S> state;
  double threshold = 0.0;
};

template <masked_parameter L>
using snapshot_t = LayerSnapshot<typename std::remove_cvref_t<L>::scalar_type, snapshot_mask_t<L>>;

/// Copies a parameter to the host.
template <masked_parameter L>
[[nodiscard]] snapshot_t<L> snapshot(const L& layer) {
  if constexpr (layer_space_v<L> == memory_space::host) {
    const auto w = layer.weights();
    return {{w.begin(), w.end()}, layer.mask(), layer.state(), layer.threshold()};
  } else {
    return download_snapshot(layer);
  }
}

/// Puts a snapshot back: weights, then the mask (enforced), then the optimizer state. Weights,
/// mask and each optimizer buffer (or an empty one) must have the layer's size and the threshold
/// must be finite; otherwise `dsd::error` and the layer is untouched.
template <masked_parameter L>
void restore(L& layer, snapshot_t<L> snap) {
  DSD_REQUIRE(snap.weights.size() == layer.size() && snap.mask.size() == layer.size(), size_mismatch,
              "snapshot of ", snap.weights.size(), " weights and ", snap.mask.size(),
              " mask entries for layer \"", layer.name(), "\" of ", layer.size());
  for (const auto* buf : {&snap.state.first, &snap.state.second})
    DSD_REQUIRE(buf->empty() || buf->size() == layer.size(), size_mismatch,
                "snapshot of layer \"", layer.name(), "\" holds optimizer state of ", buf->size(),
                " entries; the layer has ", layer.size());
  DSD_REQUIRE(std::isfinite(snap.threshold), invalid_argument, "snapshot of layer \"",
              layer.name(), "\" has threshold ", snap.threshold, "; expected a finite value");
  if constexpr (layer_space_v<L> == memory_space::host) {
    const auto w = layer.weights();
    std::copy(snap.weights.begin(), snap.weights.end(), w.begin());
    layer.set_mask(std::move(snap.mask), snap.threshold);
    layer.state() = std::move(snap.state);
  } else {
    upload_snapshot(layer, std::move(snap));
  }
}

}  // namespace dsd
