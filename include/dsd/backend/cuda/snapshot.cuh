#pragma once
/// \file
/// Host copies of a device layer (backend contract, hook 5: `download_snapshot` /
/// `upload_snapshot`, found by `dsd::snapshot` and `dsd::restore` through argument-dependent
/// lookup): checkpoints, sensitivity analysis and the host-side policies use them.

#include <cuda_runtime.h>

#include <utility>
#include <vector>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/snapshot.hpp"

namespace dsd::cuda {

/// A host copy of a device layer (`dsd::snapshot`, checkpoints, sensitivity analysis).
template <class S>
LayerSnapshot<S> download_snapshot(const DeviceMasked<S>& layer) {
  LayerSnapshot<S> snap{
      std::vector<S>(layer.size()), layer.mask().to_host(), {}, layer.threshold()};
  DSD_CUDA_CHECK(cudaMemcpyAsync(snap.weights.data(), layer.weights().ptr, layer.size() * sizeof(S),
                                 cudaMemcpyDeviceToHost, layer.stream()));
  snap.state.first = layer.state().first.download(layer.stream());
  snap.state.second = layer.state().second.download(layer.stream());
  snap.state.step = layer.state().step;
  return snap;
}

/// Puts a host copy back into a device layer (`dsd::restore`): weights, state, then the mask.
template <class S>
void upload_snapshot(DeviceMasked<S>& layer, LayerSnapshot<S> snap) {
  for (const auto* buf : {&snap.state.first, &snap.state.second})
    DSD_REQUIRE(buf->empty() || buf->size() == layer.size(), size_mismatch, "optimizer state of ",
                buf->size(), " entries for layer \"", layer.name(), "\" of ", layer.size());
  DSD_CUDA_CHECK(cudaMemcpyAsync(layer.weights().ptr, snap.weights.data(), layer.size() * sizeof(S),
                                 cudaMemcpyHostToDevice, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));  // snap.weights is freed on return
  auto& st = layer.state();
  st.first = snap.state.first.empty() ? DeviceBuffer<S>() : DeviceBuffer<S>(snap.state.first);
  st.second = snap.state.second.empty() ? DeviceBuffer<S>() : DeviceBuffer<S>(snap.state.second);
  st.step = snap.state.step;
  layer.set_mask(snap.mask, snap.threshold);
}

}  // namespace dsd::cuda
