#pragma once
/// \file
/// `GlobalSparsity` over device layers (backend contract, hook 4: `global_prune_counts`, found by
/// `GlobalSparsity::prune_counts` through argument-dependent lookup): one device selection
/// across every layer.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/prune.cuh"
#include "dsd/backend/cuda/select.cuh"
#include "dsd/layers.hpp"
#include "dsd/threshold/global_cut.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/prune_count.hpp"

namespace dsd::cuda {

/// Per-layer prune counts for `GlobalSparsity` over device layers: one device selection across
/// all of them (found by `GlobalSparsity::prune_counts` through argument-dependent lookup),
/// queued on the first layer's stream after the work queued so far on every layer's stream.
template <layer_collection C>
std::vector<std::size_t> global_prune_counts(C& layers, const GlobalSparsity& global,
                                             SelectWorkspace& ws = default_workspace()) {
  using S = collection_scalar_t<C>;
  std::vector<Segment> segs;
  std::vector<cudaStream_t> streams;
  std::size_t total = 0;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(l)>::scalar_type, S>,
                  "dsd: GlobalSparsity needs all layers to share one scalar type");
    const bool excluded = dsd::detail::excludes(global, l.name());
    segs.push_back(detail::segment_of(l, nullptr, !excluded));
    streams.push_back(l.stream());
    total += segs.back().n;
  });
  DSD_REQUIRE(total > 0, empty_tensor, "GlobalSparsity over layers with no prunable weights");
  const std::size_t k = prune_count(total, global.sparsity, "<global>");
  std::vector<std::size_t> counts(segs.size(), 0);
  if (k == 0) return counts;
  // The selection reads every layer on one stream: it must see what each layer's own stream
  // wrote (an optimizer step, an upload). It waits for the host before returning, so nothing
  // is left reading the weights afterwards.
  const cudaStream_t stream = streams.front();
  Event carrier;  // no CUDA call unless some layer has a stream of its own
  for (std::size_t i = 1; i < streams.size(); ++i)
    if (std::find(streams.begin(), streams.begin() + i, streams[i]) == streams.begin() + i)
      order_after(streams[i], stream, carrier);
  // NaN/Inf are not reported here: each layer's own prune does, in layer order, as on the CPU.
  const dsd::cuda::detail::MagnitudeKeys<S> keys;
  ws.prepare(segs, stream);
  (void)select(keys, ws, k - 1, stream);  // leaves the cut key in the workspace for count_below
  const auto below = count_below(keys, ws, stream);
  std::vector<std::uint64_t> less(segs.size()), equal(segs.size());
  for (std::size_t s = 0; s < segs.size(); ++s) less[s] = below[s].first, equal[s] = below[s].second;
  return dsd::detail::global_cut_counts(less, equal, k);
}

}  // namespace dsd::cuda
