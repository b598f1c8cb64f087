#pragma once
/// \file
/// Pruning a device layer (backend contract, hook 3: `prepare_prune`). Keepmax-Cut and Random-Cut
/// select on the device and give masks bitwise equal to the CPU's for the same weights and seed;
/// any other policy (NMCut, user policies) runs on the host through a download of the weights and
/// an upload of the mask.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/select.cuh"
#include "dsd/detail/counter_rng.hpp"
#include "dsd/detail/finite.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/pruning/random_cut.hpp"

namespace dsd {
namespace cuda {

namespace detail {
template <class S>
Segment segment_of(const DeviceMasked<S>& layer, std::uint64_t* words, bool included = true) {
  return {layer.weights().ptr, words, included ? layer.size() : 0,
          dsd::detail::fnv1a(layer.name())};
}

/// The lowest index of a NaN/Inf element into *first (which starts at ~0).
template <class S>
__global__ void first_non_finite(const S* w, std::size_t n, unsigned long long* first) {
  for (std::size_t i = global_thread(); i < n; i += global_threads())
    if (!isfinite(w[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

/// Throws the CPU's non-finite error for the layer's first NaN/Inf weight, if it has one.
template <class S>
void require_finite(const DeviceMasked<S>& layer, SelectWorkspace& ws = default_workspace()) {
  unsigned long long* first = ws.scalar();  // no allocation once the workspace is warm
  DSD_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), layer.stream()));
  first_non_finite<<<grid_for(layer.size()), block_size, 0, layer.stream()>>>(layer.weights().ptr,
                                                                              layer.size(), first);
  DSD_CUDA_CHECK(cudaGetLastError());
  unsigned long long i = 0;
  DSD_CUDA_CHECK(cudaMemcpyAsync(&i, first, sizeof i, cudaMemcpyDeviceToHost, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
  if (i == ~0ull) return;
  S value{};
  DSD_CUDA_CHECK(cudaMemcpy(&value, layer.weights().ptr + i, sizeof value, cudaMemcpyDeviceToHost));
  dsd::detail::throw_non_finite(layer.name(), static_cast<double>(value),
                                static_cast<std::size_t>(i));
}

/// Throws the CPU's non-finite error for the first NaN/Inf a selection met.
template <class S>
void require_finite(const DeviceSelect& r, const DeviceMasked<S>& layer) {
  if (r.bad_index == no_index) return;
  S value{};
  DSD_CUDA_CHECK(cudaMemcpyAsync(&value, layer.weights().ptr + r.bad_index, sizeof value,
                                 cudaMemcpyDeviceToHost, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
  dsd::detail::throw_non_finite(layer.name(), static_cast<double>(value), r.bad_index);
}

/// Prunes exactly `count` of the layer's weights by the keys' order on the device, writing the
/// layer's mask words in place (nothing is allocated once the workspace is warm). On a NaN/Inf
/// weight it throws before touching the mask.
template <class S, class Keys>
double prune_on_device(DeviceMasked<S>& layer, std::size_t count, const Keys& keys,
                       SelectWorkspace& ws) {
  Segment seg = segment_of(layer, nullptr);
  ws.prepare({&seg, 1}, layer.stream());
  // Rank count - 1 gives the threshold; with nothing to prune the pass still checks finiteness.
  const DeviceSelect r = select(keys, ws, count == 0 ? 0 : count - 1, layer.stream());
  require_finite(r, layer);
  double threshold = 0.0;
  if constexpr (std::is_same_v<Keys, MagnitudeKeys<S>>)
    if (count > 0)
      threshold = static_cast<double>(
          dsd::detail::magnitude_from_key<S>(static_cast<typename Keys::key_type>(r.key)));
  layer.rewrite_mask(
      [&](std::uint64_t* words) {
        if (count == 0) {
          kernels::fill_words<>
              <<<grid_for((layer.size() + 63) / 64), block_size, 0, layer.stream()>>>(
                  words, layer.size(), true);
          DSD_CUDA_CHECK(cudaGetLastError());
          return;
        }
        seg.words = words;
        ws.prepare({&seg, 1}, layer.stream());
        build_masks(keys, ws, count, layer.stream());
      },
      layer.size() - count, threshold);
  return threshold;
}
}  // namespace detail

}  // namespace cuda

/// Validates a prune of a device layer and prepares it (see the host `prepare_prune`): the count
/// and the weights' finiteness are checked now (one pass on the device); Keepmax-Cut and
/// Random-Cut then select on the device in the commit, other policies (NMCut, user policies)
/// build their mask on the host now from a copy of the weights and upload it in the commit.
template <class Policy = KeepmaxCut, class S>
[[nodiscard]] std::function<LayerStats()> prepare_prune(cuda::DeviceMasked<S>& layer,
                                                        std::size_t count,
                                                        const Policy& policy = {}) {
  DSD_REQUIRE(count <= layer.size(), invalid_argument, "cannot prune ", count,
              " weights of layer \"", layer.name(), "\", which has ", layer.size());
  if constexpr (std::is_same_v<Policy, KeepmaxCut> || std::is_same_v<Policy, RandomCut>) {
    if constexpr (std::is_same_v<Policy, RandomCut>)  // the host policy's rule, checked up front
      (void)RandomCut::stream_for(layer.name());
    cuda::detail::require_finite(layer);
    const auto keys = [&] {
      if constexpr (std::is_same_v<Policy, KeepmaxCut>)
        return cuda::detail::MagnitudeKeys<S>{};
      else
        return cuda::detail::RandomKeys<S>{policy.seed};
    }();
    return [&layer, count, keys] {
      cuda::detail::prune_on_device(layer, count, keys, cuda::default_workspace());
      return layer.stats();
    };
  } else {
    std::vector<S> host(layer.size());
    DSD_CUDA_CHECK(cudaMemcpyAsync(host.data(), layer.weights().ptr, host.size() * sizeof(S),
                                   cudaMemcpyDeviceToHost, layer.stream()));
    DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
    Masked<std::vector<S>> staged(host, layer.name(), layer.shape());
    prune_exactly(staged, count, policy);
    return [&layer, m = staged.mask(), t = staged.threshold()] {
      layer.set_mask(m, t);
      return layer.stats();
    };
  }
}

}  // namespace dsd
