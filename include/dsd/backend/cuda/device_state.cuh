#pragma once
/// \file
/// Optimizer state of a device layer (backend contract: the `state()` of a device `Masked`).

#include <cstdint>

#include "dsd/backend/cuda/device_buffer.cuh"

namespace dsd::cuda {

/// Optimizer state of a device layer: device buffers, allocated (zeroed) by the first step.
template <class S>
struct DeviceState {
  DeviceBuffer<S> first;   ///< momentum buffer, or Adam's first moment
  DeviceBuffer<S> second;  ///< Adam's second moment
  std::int64_t step = 0;   ///< updates taken (Adam's bias correction)
};

}  // namespace dsd::cuda
