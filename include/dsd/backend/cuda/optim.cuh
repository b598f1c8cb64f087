#pragma once
/// \file
/// The masked optimizers on the GPU, the layers of a stream in one launch (multi-tensor apply, as
/// PyTorch's fused optimizers and apex's FusedAdam do): `dsd::cuda::step(opt, layers, grads)` takes
/// dsd's own optimizer structs (`Sgd`, `MomentumSgd`, `Nesterov`, `Adam`, `AdamW`) with their
/// hyper-parameters, applies the update rules of `dsd/optim/rules.hpp` (the CPU's, as host-device
/// code) with the mask fused in, and keeps pruned weights and their state exactly zero. Each layer
/// keeps its own step count; up to `max_tensors_per_launch` layers on one stream share a launch.

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/device_tensor.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/layers.hpp"
#include "dsd/optim/adam.hpp"
#include "dsd/optim/rules.hpp"
#include "dsd/optim/sgd.hpp"

namespace dsd::cuda {

/// Layers per launch: the table travels as a kernel parameter (CUDA 12.1+ allows 32 KiB).
inline constexpr int max_tensors_per_launch = 128;

namespace detail {

enum class Rule { sgd, momentum, nesterov, adam, adamw };

template <class S>
struct TensorSlot {
  S* w;
  const S* g;
  S* first;
  S* second;
  const std::uint64_t* words;
  std::uint64_t n;
  std::uint64_t block_begin;       ///< first block of this tensor in the launch
  dsd::detail::AdamScalars<S> c;  ///< Adam's per-layer constants (bias corrections differ)
};

/// A layer's slot, ready for a launch on `stream` once `grad_stream`'s work is done.
template <class S>
struct PlannedSlot {
  TensorSlot<S> slot;
  cudaStream_t stream;
  cudaStream_t grad_stream;
  bool queued;
};

template <class S>
struct LaunchTable {
  int count;
  S lr, momentum, weight_decay;
  TensorSlot<S> t[max_tensors_per_launch];
};

/// Elements each block updates (256 threads, 16 elements each).
inline constexpr std::uint64_t block_elems = 4096;

template <Rule R, class S>
__global__ void __launch_bounds__(block_size) multi_tensor_step(const __grid_constant__ LaunchTable<S> table) {
  int lo = 0, hi = table.count;  // the slot whose blocks include this one
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (table.t[mid].block_begin <= blockIdx.x ? lo : hi) = mid;
  }
  const TensorSlot<S>& s = table.t[lo];
  const std::uint64_t begin = (blockIdx.x - s.block_begin) * block_elems;
  const std::uint64_t end = begin + block_elems < s.n ? begin + block_elems : s.n;
  for (std::uint64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const bool keep = (s.words[i >> 6] >> (i & 63)) & 1u;
    S w = s.w[i];
    const S g = s.g[i];
    if constexpr (R == Rule::sgd) {
      w = dsd::detail::kept_or_zero(keep, dsd::detail::sgd_rule(w, g, table.lr, table.weight_decay));
    } else if constexpr (R == Rule::momentum || R == Rule::nesterov) {
      S v = s.first[i];
      dsd::detail::momentum_rule<R == Rule::nesterov>(keep, w, g, v, table.lr, table.momentum,
                                                       table.weight_decay);
      s.first[i] = v;
    } else {
      S m = s.first[i], v = s.second[i];
      dsd::detail::adam_rule<R == Rule::adamw>(keep, w, g, m, v, s.c);
      s.first[i] = m;
      s.second[i] = v;
    }
    s.w[i] = w;
  }
}

template <class O>
constexpr Rule rule_of() {
  if constexpr (std::is_same_v<O, Sgd>) return Rule::sgd;
  else if constexpr (std::is_same_v<O, MomentumSgd>) return Rule::momentum;
  else if constexpr (std::is_same_v<O, Nesterov>) return Rule::nesterov;
  else if constexpr (std::is_same_v<O, Adam>) return Rule::adam;
  else return Rule::adamw;
}

template <class O>
void validate(const O& opt) {
  DSD_REQUIRE(std::isfinite(opt.lr) && opt.lr >= 0.0, invalid_argument, O::name,
              ": learning rate ", opt.lr, " must be finite and >= 0");
  dsd::detail::check_weight_decay(opt.weight_decay, O::name);
  if constexpr (requires { opt.momentum; })
    DSD_REQUIRE(opt.momentum >= 0.0 && opt.momentum < 1.0, invalid_argument, O::name,
                ": momentum ", opt.momentum, " is outside [0, 1)");
  if constexpr (requires { opt.beta1; }) {
    DSD_REQUIRE(opt.beta1 >= 0.0 && opt.beta1 < 1.0 && opt.beta2 >= 0.0 && opt.beta2 < 1.0,
                invalid_argument, O::name, ": betas (", opt.beta1, ", ", opt.beta2,
                ") must lie in [0, 1)");
    DSD_REQUIRE(opt.eps > 0.0, invalid_argument, O::name, ": eps ", opt.eps, " must be > 0");
  }
}
}  // namespace detail

/// A device optimizer struct dsd knows: Sgd, MomentumSgd, Nesterov, Adam, AdamW.
template <class O>
concept device_optimizer = std::is_same_v<O, Sgd> || std::is_same_v<O, MomentumSgd> ||
    std::is_same_v<O, Nesterov> || std::is_same_v<O, Adam> || std::is_same_v<O, AdamW>;

/// One masked step of `opt` for every layer of `layers` (a range of `DeviceMasked<S>` or a tuple
/// from `dsd::layers`) from `grads` (a random-access range of `device_tensor<const S>` or
/// `device_tensor<S>`, one per layer, in order). Each layer is updated on its own stream, the
/// layers that share a stream in shared launches; an update waits for the work queued so far on
/// its gradient's stream, and work queued there later waits for the update (the next backward
/// pass cannot overwrite a gradient still being read). All or nothing: every gradient is checked
/// and every missing state buffer allocated before any layer changes or anything is queued.
/// State buffers are allocated, zeroed, on a layer's first step.
template <device_optimizer O, layer_collection C, std::ranges::random_access_range G>
void step(const O& opt, C&& layers, const G& grads) {
  using S = collection_scalar_t<C>;
  constexpr detail::Rule rule = detail::rule_of<O>();
  constexpr bool one_buffer = rule != detail::Rule::sgd;
  constexpr bool two_buffers = rule == detail::Rule::adam || rule == detail::Rule::adamw;
  detail::validate(opt);
  const std::size_t n_layers = layer_count(layers);
  DSD_REQUIRE(static_cast<std::size_t>(std::ranges::size(grads)) == n_layers, size_mismatch,
              O::name, ": ", std::ranges::size(grads), " gradients for ", n_layers, " layers");
  if (n_layers == 0) return;
  const auto grad = [&](std::size_t i) -> decltype(auto) {
    return *(std::ranges::begin(grads) + static_cast<std::ptrdiff_t>(i));
  };

  // 1. Every gradient checked, nothing changed yet.
  bool needs_state = false;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(l)>::scalar_type, S>,
                  "dsd: cuda::step needs all layers to share one scalar type");
    const auto& g = grad(i);
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(*g.ptr)>, S>,
                  "dsd: a gradient must be a device_tensor of the parameter's scalar type");
    l.require_gradient(O::name, g);
    if constexpr (one_buffer) needs_state = needs_state || l.state().first.size() != l.size();
    if constexpr (two_buffers) needs_state = needs_state || l.state().second.size() != l.size();
  });
  // 2. Missing state allocated aside: a failed allocation leaves every layer as it was.
  std::vector<std::pair<DeviceBuffer<S>, DeviceBuffer<S>>> fresh;
  if (needs_state) {
    fresh.resize(n_layers);
    for_each_layer(layers, [&](auto& l, std::size_t i) {
      if constexpr (one_buffer)
        if (l.state().first.size() != l.size()) fresh[i].first = DeviceBuffer<S>(l.size());
      if constexpr (two_buffers)
        if (l.state().second.size() != l.size()) fresh[i].second = DeviceBuffer<S>(l.size());
    });
  }
  // 3. The commit: new state installed and zeroed on the layer's stream, steps counted.
  std::vector<detail::PlannedSlot<S>> plan;
  plan.reserve(n_layers);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    auto& st = l.state();
    if (needs_state) {
      if (!fresh[i].first.empty()) {
        st.first = std::move(fresh[i].first);
        st.first.zero(l.stream());
      }
      if (!fresh[i].second.empty()) {
        st.second = std::move(fresh[i].second);
        st.second.zero(l.stream());
      }
    }
    if constexpr (one_buffer) ++st.step;  // as the CPU optimizers count
    const auto& g = grad(i);
    detail::TensorSlot<S> slot = {l.weights().ptr,
                                  g.ptr,
                                  st.first.empty() ? nullptr : st.first.data(),
                                  st.second.empty() ? nullptr : st.second.data(),
                                  l.mask().words(),
                                  l.size(),
                                  0,
                                  {}};
    if constexpr (two_buffers)
      slot.c = dsd::detail::adam_scalars<S>(opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay,
                                            static_cast<double>(st.step));
    plan.push_back({slot, l.stream(), g.stream, false});
  });

  // 4. The launches, stream by stream in order of first appearance.
  detail::LaunchTable<S> table{};
  table.lr = static_cast<S>(opt.lr);
  table.weight_decay = static_cast<S>(opt.weight_decay);
  if constexpr (requires { opt.momentum; }) table.momentum = static_cast<S>(opt.momentum);
  std::uint64_t blocks = 0;
  const auto launch = [&](cudaStream_t stream) {
    if (table.count == 0) return;
    detail::multi_tensor_step<rule, S><<<static_cast<unsigned>(blocks), block_size, 0, stream>>>(table);
    DSD_CUDA_CHECK(cudaGetLastError());
    table.count = 0;
    blocks = 0;
  };
  Event carrier;  // no CUDA call unless a gradient has a stream other than its layer's
  std::vector<cudaStream_t> grad_streams;
  for (std::size_t first = 0; first < plan.size(); ++first) {
    if (plan[first].queued) continue;
    const cudaStream_t stream = plan[first].stream;
    grad_streams.clear();
    for (std::size_t i = first; i < plan.size(); ++i)
      if (!plan[i].queued && plan[i].stream == stream && plan[i].grad_stream != stream &&
          std::find(grad_streams.begin(), grad_streams.end(), plan[i].grad_stream) ==
              grad_streams.end())
        grad_streams.push_back(plan[i].grad_stream);
    for (const cudaStream_t gs : grad_streams) order_after(gs, stream, carrier);
    for (std::size_t i = first; i < plan.size(); ++i) {
      if (plan[i].queued || plan[i].stream != stream) continue;
      detail::TensorSlot<S>& slot = table.t[table.count++];
      slot = plan[i].slot;
      slot.block_begin = blocks;
      blocks += (slot.n + detail::block_elems - 1) / detail::block_elems;
      plan[i].queued = true;
      if (table.count == max_tensors_per_launch) launch(stream);
    }
    launch(stream);
    for (const cudaStream_t gs : grad_streams) order_after(stream, gs, carrier);
  }
}

/// One masked step of one device layer.
template <device_optimizer O, class S, class GS>
void step(const O& opt, DeviceMasked<S>& layer, const device_tensor<GS>& grad) {
  const device_tensor<GS> grads[] = {grad};
  step(opt, std::tuple<DeviceMasked<S>&>(layer), grads);
}

}  // namespace dsd::cuda
