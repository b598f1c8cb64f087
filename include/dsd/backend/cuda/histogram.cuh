#pragma once
/// \file
/// The weight histogram of a device layer (`cuda::DeviceMasked<S>`): what
/// `dsd::io::weight_histogram` gives a host layer, bin for bin the same for the same weights and
/// mask. One pass on the device (two when the range is to be found), per-block counters in shared
/// memory (global atomics when the bins are too many for it), one copy of the counts back.
///
/// A generic caller reaches it unqualified (`dsd::io::weight_histograms(layers, options)`, the
/// run recorder): the layer's type names `dsd::cuda::device_tensor<S>` and `DeviceBitMask`, so
/// argument-dependent lookup searches `dsd::cuda`; and `dsd::io` declares it too (a
/// using-declaration, the same function), so `dsd::io::weight_histogram(device_layer)` works.

#include <cuda_runtime.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/io/histogram.hpp"

namespace dsd::cuda {

namespace detail {

/// The device result, unsigned long long each: the bins' counts, then the pruned, below, above and
/// NaN counts (the bins + 4 slots a weight can go to), then `histogram_extra` more: the first
/// kept NaN's index (~0 when none) and the range found (the bits of a double; 0 when not asked).
inline constexpr std::size_t histogram_extra = 2;

/// Counters a block keeps in shared memory at most (32 bits each, 48 KiB: what every device gives
/// a block without opting in); with more slots each weight is counted in global memory.
inline constexpr std::size_t histogram_shared_slots = 48 * 1024 / sizeof(unsigned int);

/// Elements at most one block of the shared-memory kernel counts, so its 32-bit counters cannot
/// overflow.
inline constexpr std::uint64_t histogram_block_items = std::uint64_t{1} << 31;

/// Whether bit `i` of the mask words is set (kept).
__device__ inline bool kept_bit(const std::uint64_t* words, std::uint64_t i) {
  return ((words[i >> 6] >> (i & 63)) & 1u) != 0;
}

/// The histogram's range on the device, as the host finds it: `given` when non-zero, else the
/// largest kept finite |w| found, 1 when that is 0, kept within [min_range, max_range]
/// (io::detail::range_from_largest).
__device__ inline double histogram_range(double given, const unsigned long long* found) {
  if (given != 0.0) return given;
  const double r = __longlong_as_double(static_cast<long long>(*found));
  if (r == 0.0) return 1.0;
  return r < io::detail::min_range ? io::detail::min_range : r > io::detail::max_range ? io::detail::max_range : r;
}

/// The slot of one weight: its bin (io::detail::bin_of, the host's own function), or bins
/// (pruned), bins + 1 (below -r), bins + 2 (above r), bins + 3 (NaN).
template <class S>
__device__ inline unsigned histogram_slot(S value, bool kept, double r, double inv_r, double half_n,
                                          double width, unsigned bins) {
  if (!kept) return bins;
  const auto x = static_cast<double>(value);
  if (x != x) return bins + 3;
  if (x < -r) return bins + 1;  // -inf included
  if (x > r) return bins + 2;   // +inf included
  return io::detail::bin_of(x, inv_r, half_n, width, static_cast<double>(bins - 1));
}

/// The largest finite |w| over kept positions into *top (the bits of a non-negative double, which
/// order like the doubles; *top starts at 0).
template <class S>
__global__ void largest_kept(const S* w, const std::uint64_t* words, std::uint64_t n,
                             unsigned long long* top) {
  double t = 0.0;
  for (std::uint64_t i = global_thread(); i < n; i += global_threads()) {
    const double a = fabs(static_cast<double>(w[i]));
    const bool counts = kept_bit(words, i) && a <= DBL_MAX;  // not inf, not NaN
    t = counts && a > t ? a : t;
  }
  for (int offset = 16; offset > 0; offset /= 2)
    t = fmax(t, __shfl_down_sync(0xffffffffu, t, offset));
  if ((threadIdx.x & 31) == 0 && t > 0.0)
    atomicMax(top, static_cast<unsigned long long>(__double_as_longlong(t)));
}

/// Counts every weight into its slot of `out` (bins + 4 + histogram_extra entries, see above).
/// With `Shared`, each block counts into `bins + 4` 32-bit counters of dynamic shared memory and
/// adds them to `out` at the end; otherwise straight into `out`. Lanes of a warp that
/// go to the same slot add once (most weights of a trained layer fall in a few bins near zero).
/// A kept NaN's index goes to out[bins + 4] by atomicMin.
template <bool Shared, class S>
__global__ void bin_weights(const S* w, const std::uint64_t* words, std::uint64_t n, unsigned bins,
                            double given, unsigned long long* out) {
  extern __shared__ unsigned int dsd_histogram_counters[];
  const unsigned slots = bins + 4;
  if constexpr (Shared) {
    for (unsigned s = threadIdx.x; s < slots; s += blockDim.x) dsd_histogram_counters[s] = 0;
    __syncthreads();
  }
  // As the host computes them: one division each, rounded to nearest.
  const double r = histogram_range(given, out + slots + 1), inv_r = __ddiv_rn(1.0, r),
               half_n = 0.5 * static_cast<double>(bins), width = __ddiv_rn(2.0 * r, static_cast<double>(bins));
  const unsigned lane = threadIdx.x & 31;
  constexpr unsigned none = ~0u;
  // The loop runs over whole warps (blockDim is a multiple of 32), so every lane takes each turn
  // and the match below sees the full warp.
  for (std::uint64_t base = global_thread() - lane; base < n; base += global_threads()) {
    const std::uint64_t i = base + lane;
    unsigned slot = none;
    if (i < n) {
      slot = histogram_slot(w[i], kept_bit(words, i), r, inv_r, half_n, width, bins);
      if (slot == bins + 3) atomicMin(out + slots, static_cast<unsigned long long>(i));
    }
    const unsigned peers = __match_any_sync(0xffffffffu, slot);  // lanes with the same slot
    if (slot != none && lane == static_cast<unsigned>(__ffs(peers) - 1)) {
      if constexpr (Shared)
        atomicAdd(&dsd_histogram_counters[slot], static_cast<unsigned>(__popc(peers)));
      else
        atomicAdd(out + slot, static_cast<unsigned long long>(__popc(peers)));
    }
  }
  if constexpr (Shared) {
    __syncthreads();
    for (unsigned s = threadIdx.x; s < slots; s += blockDim.x)
      if (dsd_histogram_counters[s] != 0)
        atomicAdd(out + s, static_cast<unsigned long long>(dsd_histogram_counters[s]));
  }
}

/// Blocks for the histogram of `n` weights into `slots` counters. A block of the shared-memory
/// kernel zeroes and adds up all its counters: it gets at least as many weights as counters (and
/// 8 a thread), so a small layer with many bins does not pay more for counters than for weights;
/// and at most `histogram_block_items`.
inline unsigned histogram_grid(std::uint64_t n, std::uint64_t slots, bool shared) {
  if (!shared) return grid_for(n);
  const std::uint64_t per_block =
      slots > std::uint64_t{block_size} * 8 ? slots : std::uint64_t{block_size} * 8;
  constexpr std::uint64_t cap = 132 * 16;  // as grid_for
  std::uint64_t blocks = (n + per_block - 1) / per_block;
  blocks = blocks < cap ? blocks : cap;
  const std::uint64_t least = (n + histogram_block_items - 1) / histogram_block_items;
  blocks = blocks > least ? blocks : least;
  blocks = blocks > 0 ? blocks : 1;
  constexpr std::uint64_t most = (std::uint64_t{1} << 31) - 1;  // gridDim.x
  return static_cast<unsigned>(blocks < most ? blocks : most);
}

}  // namespace detail

/// The histogram of device layer `layer`, queued on `stream` after the work queued so far on the
/// layer's stream; waits for `stream` (one copy of the counts back). Everything as the host's
/// `dsd::io::weight_histogram`: the same options and checks (`errc::invalid_argument`, the same
/// messages), bins, range found as the largest finite kept |w| (1 when that is 0), pruned
/// positions counted apart whatever they hold, and a kept NaN refused with `errc::non_finite`
/// naming the layer and its first index.
template <class S>
[[nodiscard]] io::WeightHistogram weight_histogram(const DeviceMasked<S>& layer,
                                                   const io::HistogramOptions& options,
                                                   cudaStream_t stream) {
  io::detail::check_histogram_options(layer.name(), options);
  io::WeightHistogram h{layer.name(), options.range, std::vector<std::uint64_t>(options.bins, 0)};
  const std::uint64_t n = layer.size();
  if (n == 0) {  // nothing to launch (a wrapped layer is never empty; a moved-from one may be)
    if (h.range == 0.0) h.range = 1.0;
    return h;
  }
  const auto bins = static_cast<unsigned>(options.bins);
  const std::size_t slots = options.bins + 4, total = slots + detail::histogram_extra;
  const bool find_range = options.range == 0.0;

  // The weights and mask were written on the layer's stream (an optimizer step, a prune).
  Event carrier;  // no CUDA call unless the streams differ
  order_after(layer.stream(), stream, carrier);
  DeviceBuffer<unsigned long long> out(total);
  DSD_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, total * sizeof(unsigned long long), stream));
  DSD_CUDA_CHECK(cudaMemsetAsync(out.data() + slots, 0xff, sizeof(unsigned long long), stream));
  const S* const w = layer.weights().ptr;
  const std::uint64_t* const words = layer.mask().words();
  if (find_range) {
    detail::largest_kept<<<grid_for(n), block_size, 0, stream>>>(w, words, n,
                                                                 out.data() + slots + 1);
    DSD_CUDA_CHECK(cudaGetLastError());
  }
  if (slots <= detail::histogram_shared_slots) {
    detail::bin_weights<true>
        <<<detail::histogram_grid(n, slots, true), block_size, slots * sizeof(unsigned int),
           stream>>>(w, words, n, bins, options.range, out.data());
  } else {
    detail::bin_weights<false><<<detail::histogram_grid(n, slots, false), block_size, 0, stream>>>(
        w, words, n, bins, options.range, out.data());
  }
  DSD_CUDA_CHECK(cudaGetLastError());
  std::vector<unsigned long long> host(total);
  DSD_CUDA_CHECK(cudaMemcpyAsync(host.data(), out.data(), total * sizeof(unsigned long long),
                                 cudaMemcpyDeviceToHost, stream));
  DSD_CUDA_CHECK(cudaStreamSynchronize(stream));

  for (std::size_t b = 0; b < options.bins; ++b) h.counts[b] = host[b];
  h.pruned = host[options.bins];
  h.below = host[options.bins + 1];
  h.above = host[options.bins + 2];
  if (find_range) {
    h.range = io::detail::range_from_largest(std::bit_cast<double>(host[slots + 1]));
  }
  const unsigned long long first_nan = host[slots];
  DSD_REQUIRE(first_nan == ~0ull, non_finite, "layer \"", layer.name(),
              "\" has a NaN weight at index ", static_cast<std::size_t>(first_nan),
              "; its histogram cannot bin it");
  return h;
}

/// The histogram of device layer `layer`, on the layer's stream (see above).
template <class S>
[[nodiscard]] io::WeightHistogram weight_histogram(const DeviceMasked<S>& layer,
                                                   const io::HistogramOptions& options = {}) {
  return weight_histogram(layer, options, layer.stream());
}

}  // namespace dsd::cuda

namespace dsd::io {
/// `dsd::io::weight_histogram` of a device layer: the CUDA one above (the same functions, so a
/// call that finds them both ways, qualified or by argument-dependent lookup, is not ambiguous).
using dsd::cuda::weight_histogram;
}  // namespace dsd::io
