#pragma once
/// \file
/// The CUDA backend's layer, `cuda::DeviceMasked<S>` (`Masked<cuda::device_tensor<S>>`), with
/// every hook of the backend contract (dsd/backend/contract.hpp) it provides, so `dsd::prune`,
/// `dsd::prune(layers, thresholds)`, `dsd::enforce`, `dsd::redense`, `dsd::layer_stats`,
/// `dsd::snapshot`/`restore`, checkpoints and `dsd::run` take device layers unchanged:
///
/// | hook | where |
/// |---|---|
/// | 1. `default_mask<device_tensor<S>>` = `DeviceBitMask` | device_masked.cuh |
/// | 2. `Masked<device_tensor<S>, DeviceBitMask>` | device_masked.cuh (state: device_state.cuh) |
/// | 3. `prepare_prune(DeviceMasked<S>&, count, policy)` | prune.cuh |
/// | 4. `global_prune_counts(layers, GlobalSparsity)` | global_counts.cuh |
/// | 5. `download_snapshot` / `upload_snapshot` | snapshot.cuh |

#include "dsd/backend/contract.hpp"
#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/global_counts.cuh"
#include "dsd/backend/cuda/prune.cuh"
#include "dsd/backend/cuda/snapshot.cuh"

static_assert(dsd::backend_layer<dsd::cuda::DeviceMasked<float>>,
              "dsd: the CUDA backend's float layer misses a hook of dsd/backend/contract.hpp");
static_assert(dsd::backend_layer<dsd::cuda::DeviceMasked<double>>,
              "dsd: the CUDA backend's double layer misses a hook of dsd/backend/contract.hpp");
