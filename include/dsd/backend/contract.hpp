#pragma once
/// \file
/// The backend contract: what a backend (CUDA here; ROCm, SYCL or a user's) provides so that
/// dsd's host-side algorithms (`prune`, `prune(layers, thresholds)`, `enforce`, `redense`,
/// `layer_stats`, `snapshot`/`restore`, checkpoints, sensitivity analysis, `GlobalSparsity`,
/// `run`) take its layers unchanged. Five hooks, found by specialisation or by
/// argument-dependent lookup (so they live in namespace `dsd` or in the backend's namespace,
/// where its tensor type lives):
///
/// 1. `default_mask<Tensor>` (specialise in namespace dsd): the mask a `Masked<Tensor>` keeps.
/// 2. `Masked<Tensor, Mask>` (specialise in namespace dsd): the host `Masked`'s interface
///    (`name`, `size`, `shape`, `mask`, `state`, `threshold`, `set_mask` from a host `BitMask`,
///    `enforce`, `redense`, `stats`) over the backend's memory; `memory_space_v<Tensor>` is not
///    `memory_space::host`.
/// 3. `prepare_prune(layer, count, policy)`: validates a prune of `count` weights and returns its
///    commit, a `std::function<LayerStats()>` that cannot fail for a reason of the data (a
///    collection prune prepares every layer before committing any), at least for `KeepmaxCut`
///    and `RandomCut`.
/// 4. `global_prune_counts(layers, const GlobalSparsity&)`: per-layer counts of one cut across
///    every layer (ties to earlier layers, then lower indices).
/// 5. `download_snapshot(const layer&)` and `upload_snapshot(layer&, snapshot_t<layer>)`: host
///    copies of the weights, mask, optimizer state and threshold.
///
/// A backend checks itself with `static_assert(dsd::backend_layer<its layer>)` (the CUDA backend
/// does, in backend/cuda/masked.cuh).

#include <concepts>
#include <cstddef>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "dsd/layers.hpp"
#include "dsd/mask.hpp"
#include "dsd/masked.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/pruning/random_cut.hpp"
#include "dsd/snapshot.hpp"
#include "dsd/tensor.hpp"
#include "dsd/threshold/global_sparsity.hpp"

namespace dsd {

/// A wrapped parameter of a backend's memory that provides the five hooks above.
template <class L>
concept backend_layer = masked_parameter<L> && layer_space_v<L>
!= memory_space::host&&
        std::same_as<typename L::mask_type, default_mask_t<typename L::tensor_type>>&& requires(
            L& l, const L& cl, const BitMask& host_mask, std::size_t count, snapshot_t<L> snap,
            std::vector<L>& layers, const GlobalSparsity& global) {
  { cl.name() } -> std::convertible_to<std::string_view>;
  { cl.size() } -> std::same_as<std::size_t>;
  { cl.shape() } -> std::same_as<Shape>;
  { cl.threshold() } -> std::convertible_to<double>;
  { cl.stats() } -> std::same_as<LayerStats>;
  cl.mask();
  l.state();
  l.set_mask(host_mask, 0.0);
  l.enforce();
  l.redense();
  { prepare_prune(l, count, KeepmaxCut{}) } -> std::same_as<std::function<LayerStats()>>;
  { prepare_prune(l, count, RandomCut{}) } -> std::same_as<std::function<LayerStats()>>;
  { global_prune_counts(layers, global) } -> std::same_as<std::vector<std::size_t>>;
  { download_snapshot(cl) } -> std::same_as<snapshot_t<L>>;
  upload_snapshot(l, std::move(snap));
};

}  // namespace dsd
