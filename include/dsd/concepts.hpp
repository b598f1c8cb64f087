#pragma once
/// \file
/// The public concepts of dsd in one place: what a type must offer to plug in. Each is defined
/// next to the code it constrains; this header includes those headers and lists them.
///
/// | concept | defined in | a type models it when |
/// |---|---|---|
/// | `floating_scalar<S>` | tensor.hpp | S is float or double |
/// | `readable_tensor<T>` | tensor.hpp | `tensor_traits<T>` gives a scalar type, `data` and `size` |
/// | `parameter_tensor<T>` | tensor.hpp | as above, with mutable `data`: dsd can update it in place |
/// | `host_tensor<T>` | tensor.hpp | a parameter tensor in host memory (what the CPU kernels take) |
/// | `mask_storage<M>` | mask.hpp | a mask: size, test, set, fill, assign, count, for_each_kept |
/// | `masked_parameter<L>` | masked.hpp | L is a `Masked<T, M>` (host or device) |
/// | `layer_collection<C>` | layers.hpp | a tuple of `Masked&` (from `dsd::layers`) or a range of `Masked` |
/// | `pruning_policy<P, S, M>` | pruning/policy.hpp | P has a `name` and a `build_mask` keeping exactly n - k |
/// | `threshold_policy<P, C>` | threshold/policy.hpp | P gives a `Cut` (one prune count per layer of C, and where a cut it found fell) or bare counts |
/// | `masked_optimizer<O, L, G>` | optim/optimizer.hpp | O has a `name` and `step(layer, grad)` |
///
/// The CUDA backend adds `cuda::device_optimizer<O>` (backend/cuda/optim.cuh): the optimizer
/// structs `cuda::step` runs on the GPU.

#include "dsd/layers.hpp"
#include "dsd/mask.hpp"
#include "dsd/masked.hpp"
#include "dsd/optim/optimizer.hpp"
#include "dsd/pruning/policy.hpp"
#include "dsd/tensor.hpp"
#include "dsd/threshold/policy.hpp"
