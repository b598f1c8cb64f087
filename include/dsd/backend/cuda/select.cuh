#pragma once
/// \file
/// Device-wide exact selection in O(n): the k-th smallest key over one or many segments (layers)
/// by most-significant-digit radix select, 8 bits per pass, the digit histogram of each block in
/// shared memory and the bucket chosen on the device, so the passes queue back to back with no
/// host synchronisation. Masks are then built with BitMask's layout by warp ballots, with ties at
/// the threshold given to the lowest global index first through a scan of per-group tie counts:
/// bit for bit the CPU's masks. Sizes are 64-bit throughout.

#include <cuda_runtime.h>
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_logic.hpp"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/detail/counter_rng.hpp"

namespace dsd::cuda {

/// One tensor taking part in a selection: its elements, the mask words written for it (may be
/// null when only counting), its size, and RandomCut's per-layer stream key.
struct Segment {
  const void* data = nullptr;
  std::uint64_t* words = nullptr;
  std::uint64_t n = 0;
  std::uint64_t stream = 0;
};

namespace detail {

/// Elements one warp handles at a time: 64 ballots of 32 lanes, i.e. 32 mask words, one a lane.
inline constexpr std::uint64_t group_size = 2048;
inline constexpr unsigned digit_bits = 8;
inline constexpr unsigned bins = 1u << digit_bits;
inline constexpr std::uint64_t no_index = ~std::uint64_t{0};

/// The selection's running state, kept on the device between passes.
struct SelectState {
  std::uint64_t prefix = 0;       ///< digits chosen so far
  std::uint64_t prefix_mask = 0;  ///< which bits of `prefix` are chosen
  std::uint64_t rank = 0;         ///< rank still sought within the keys matching the prefix
  std::uint64_t less = 0;         ///< keys known to be smaller than the answer
  std::uint64_t bad = no_index;   ///< first non-finite element, as group * group_size + offset
};

__device__ inline std::uint32_t magnitude_bits(float x) { return __float_as_uint(x) & 0x7fffffffu; }
__device__ inline std::uint64_t magnitude_bits(double x) {
  return static_cast<std::uint64_t>(__double_as_longlong(x)) & 0x7fffffffffffffffull;
}

/// Keepmax-Cut's keys: the bits of |w|, which order like |w|; Inf and NaN are flagged.
template <class S>
struct MagnitudeKeys {
  using key_type = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  static constexpr unsigned key_bits = sizeof(S) * 8 - 1;  // the sign bit is cleared
  static constexpr key_type non_finite_key =
      sizeof(S) == 4 ? key_type(0x7f800000u) : key_type(0x7ff0000000000000ull);
  __device__ key_type operator()(const Segment& s, std::uint64_t i) const {
    return magnitude_bits(static_cast<const S*>(s.data)[i]);
  }
  __device__ bool non_finite(const Segment&, std::uint64_t, key_type k) const {
    return k >= non_finite_key;
  }
};

/// Random-Cut's keys: the counter-based generator's 53-bit draws (the CPU's very numbers).
template <class S>
struct RandomKeys {
  using key_type = std::uint64_t;
  static constexpr unsigned key_bits = 53;
  std::uint64_t seed = 0;
  __device__ key_type operator()(const Segment& s, std::uint64_t i) const {
    return dsd::detail::random_cut_key(seed, s.stream, i);
  }
  __device__ bool non_finite(const Segment& s, std::uint64_t i, key_type) const {
    return !isfinite(static_cast<const S*>(s.data)[i]);
  }
};

/// Calls body(segment, first element, global group) for each group handled by this warp.
template <class Body>
__device__ void for_each_group(const std::uint64_t* group_begin, int segments, Body&& body) {
  const std::uint64_t groups = group_begin[segments];
  const std::uint64_t warp = global_thread() / 32, warps = global_threads() / 32;
  for (std::uint64_t g = warp; g < groups; g += warps) {
    const int s = dsd::detail::owning_segment(group_begin, segments, g);
    body(s, (g - group_begin[s]) * group_size, g);
  }
}

template <class Keys>
__global__ void histogram(Keys keys, const Segment* segs, const std::uint64_t* group_begin,
                          int segments, SelectState* state, unsigned shift, bool first,
                          unsigned long long* hist) {
  using K = typename Keys::key_type;
  __shared__ unsigned int h[bins];
  for (unsigned b = threadIdx.x; b < bins; b += blockDim.x) h[b] = 0;
  __syncthreads();
  const K prefix = static_cast<K>(state->prefix), mask = static_cast<K>(state->prefix_mask);
  const unsigned lane = threadIdx.x & 31;
  for_each_group(group_begin, segments, [&](int s, std::uint64_t base, std::uint64_t g) {
    const Segment seg = segs[s];
    for (unsigned it = 0; it < 64; ++it) {
      const std::uint64_t i = base + it * 32 + lane;
      const bool in = i < seg.n;
      const K k = in ? keys(seg, i) : K(0);
      if (first && in && keys.non_finite(seg, i, k))
        atomicMin(reinterpret_cast<unsigned long long*>(&state->bad),
                  static_cast<unsigned long long>(g * group_size + it * 32 + lane));
      const bool counts = in && (k & mask) == prefix;
      const unsigned active = __ballot_sync(0xffffffffu, counts);
      if (!counts) continue;
      const unsigned bin = static_cast<unsigned>(k >> shift) & (bins - 1);
      const unsigned peers = __match_any_sync(active, bin);  // lanes with the same digit
      if (lane == static_cast<unsigned>(__ffs(peers) - 1)) atomicAdd(&h[bin], __popc(peers));
    }
  });
  __syncthreads();
  for (unsigned b = threadIdx.x; b < bins; b += blockDim.x)
    if (h[b] != 0) atomicAdd(&hist[b], static_cast<unsigned long long>(h[b]));
}

/// Picks the bucket holding the sought rank, narrows the prefix, and clears the histogram. One
/// block of `bins` threads: the counts are scanned in shared memory, not walked by one thread.
template <int = 0>
__global__ void choose_bucket(SelectState* state, unsigned shift, unsigned long long* hist) {
  __shared__ unsigned long long cum[bins];
  // The rank sought in this pass, read once before the barriers below: the thread that matches
  // rewrites state->rank, and a warp reading it from global memory after that write could match
  // a second bucket.
  __shared__ std::uint64_t sought;
  const unsigned b = threadIdx.x;
  if (b == 0) sought = state->rank;
  const unsigned long long count = hist[b];
  cum[b] = count;
  __syncthreads();
  for (unsigned off = 1; off < bins; off *= 2) {  // inclusive scan (Hillis-Steele)
    const unsigned long long add = b >= off ? cum[b - off] : 0;
    __syncthreads();
    cum[b] += add;
    __syncthreads();
  }
  const std::uint64_t rank = sought;
  const unsigned long long before = cum[b] - count;
  // The bucket whose range [before, cum) holds the rank; the last bucket if none does (cannot
  // happen for a valid rank, but keeps the state well-defined).
  if ((before <= rank && rank < cum[b]) || (b == bins - 1 && rank >= cum[b])) {
    state->prefix |= std::uint64_t{b} << shift;
    state->prefix_mask |= std::uint64_t{bins - 1} << shift;
    state->rank = rank - before;
    state->less += before;
  }
  hist[b] = 0;
}

/// Per group: how many keys equal the threshold.
template <class Keys>
__global__ void count_ties(Keys keys, const Segment* segs, const std::uint64_t* group_begin,
                           int segments, const SelectState* state, std::uint64_t* ties) {
  using K = typename Keys::key_type;
  const K t = static_cast<K>(state->prefix);
  const unsigned lane = threadIdx.x & 31;
  for_each_group(group_begin, segments, [&](int s, std::uint64_t base, std::uint64_t g) {
    const Segment seg = segs[s];
    unsigned c = 0;
    for (unsigned it = 0; it < 64; ++it) {
      const std::uint64_t i = base + it * 32 + lane;
      c += (i < seg.n && keys(seg, i) == t) ? 1u : 0u;
    }
    for (int off = 16; off > 0; off /= 2) c += __shfl_down_sync(0xffffffffu, c, off);
    if (lane == 0) ties[g] = c;
  });
}

/// Per segment: keys below and equal to the threshold (GlobalSparsity's per-layer counts).
template <class Keys>
__global__ void count_below(Keys keys, const Segment* segs, const std::uint64_t* group_begin,
                            int segments, const SelectState* state, unsigned long long* counts) {
  using K = typename Keys::key_type;
  const K t = static_cast<K>(state->prefix);
  const unsigned lane = threadIdx.x & 31;
  for_each_group(group_begin, segments, [&](int s, std::uint64_t base, std::uint64_t) {
    const Segment seg = segs[s];
    unsigned less = 0, equal = 0;
    for (unsigned it = 0; it < 64; ++it) {
      const std::uint64_t i = base + it * 32 + lane;
      if (i >= seg.n) continue;
      const K k = keys(seg, i);
      less += k < t;
      equal += k == t;
    }
    for (int off = 16; off > 0; off /= 2) {
      less += __shfl_down_sync(0xffffffffu, less, off);
      equal += __shfl_down_sync(0xffffffffu, equal, off);
    }
    if (lane == 0) {
      if (less) atomicAdd(&counts[2 * s], static_cast<unsigned long long>(less));
      if (equal) atomicAdd(&counts[2 * s + 1], static_cast<unsigned long long>(equal));
    }
  });
}

/// Writes the mask words: kept where key > t, and where key == t once `prune - less` equal keys
/// (lowest global index first, `tie_scan` = equal keys in earlier groups) have been pruned.
template <class Keys>
__global__ void build_words(Keys keys, const Segment* segs, const std::uint64_t* group_begin,
                            int segments, const SelectState* state, std::uint64_t prune,
                            const std::uint64_t* tie_scan) {
  using K = typename Keys::key_type;
  const K t = static_cast<K>(state->prefix);
  const std::uint64_t tie_budget = prune - state->less;
  const unsigned lane = threadIdx.x & 31;
  for_each_group(group_begin, segments, [&](int s, std::uint64_t base, std::uint64_t g) {
    const Segment seg = segs[s];
    std::uint64_t above = 0, equal = 0;  // this lane's word: word `lane` of the group
    for (unsigned it = 0; it < 64; ++it) {
      const std::uint64_t i = base + it * 32 + lane;
      const K k = i < seg.n ? keys(seg, i) : K(0);
      const unsigned a = __ballot_sync(0xffffffffu, i < seg.n && k > t);
      const unsigned e = __ballot_sync(0xffffffffu, i < seg.n && k == t);
      if (lane == it / 2) {
        above |= std::uint64_t{a} << (32 * (it & 1));
        equal |= std::uint64_t{e} << (32 * (it & 1));
      }
    }
    // Equal keys before this word: earlier groups, then earlier lanes of this group.
    const unsigned mine = static_cast<unsigned>(__popcll(equal));
    unsigned before = mine;
    for (int off = 1; off < 32; off *= 2) {
      const unsigned up = __shfl_up_sync(0xffffffffu, before, off);
      if (lane >= static_cast<unsigned>(off)) before += up;
    }
    const std::uint64_t rank = tie_scan[g] + (before - mine);
    equal = dsd::detail::clear_lowest_bits(equal, dsd::detail::ties_to_drop(tie_budget, rank));
    const std::uint64_t word = base / 64 + lane;
    if (word < (seg.n + 63) / 64) seg.words[word] = above | equal;
  });
}

}  // namespace detail

/// The result of a device selection: the key of the sought rank and how many keys are smaller.
struct DeviceSelect {
  std::uint64_t key = 0;
  std::uint64_t less = 0;
  std::size_t bad_segment = 0;               ///< with `bad_index`: first non-finite element
  std::uint64_t bad_index = detail::no_index;  ///< no_index when every element is finite
};

/// Device memory a selection works in, grown on demand and reused: keep one per layer set (or
/// use `default_workspace()`), so pruning allocates nothing once warm. One workspace may serve
/// layers on different streams: `build_masks` returns with its kernels still reading the
/// workspace, so each use is queued (on the device) after the last use on another stream, and
/// the buffers are regrown only after the host has waited for that use.
class SelectWorkspace {
 public:
  /// Makes the segment table and scratch for `segments`; returns the number of groups.
  std::uint64_t prepare(std::span<const Segment> segments, cudaStream_t stream) {
    DSD_REQUIRE(segments.size() < (std::size_t{1} << 30), invalid_argument,
                "a device selection over ", segments.size(), " tensors");
    group_begin_host_.assign(1, 0);
    for (const Segment& s : segments)
      group_begin_host_.push_back(group_begin_host_.back() +
                                  (s.n + detail::group_size - 1) / detail::group_size);
    const std::uint64_t groups = group_begin_host_.back();
    std::size_t bytes = 0;  // a size query: nothing is queued
    DSD_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, ties_.data(), scan_.data(),
                                                 static_cast<std::int64_t>(groups), stream));
    const bool regrow = segs_.size() < segments.size() ||
                        group_begin_.size() < group_begin_host_.size() || ties_.size() < groups ||
                        scan_.size() < groups || counts_.size() < 2 * segments.size() ||
                        hist_.size() < detail::bins || state_.size() < 1 || temp_.size() < bytes;
    acquire(stream, regrow);
    segs_.reserve(segments.size());
    group_begin_.reserve(group_begin_host_.size());
    ties_.reserve(groups);
    scan_.reserve(groups);
    counts_.reserve(2 * segments.size());
    hist_.reserve(detail::bins);
    state_.reserve(1);
    temp_.reserve(bytes);
    DSD_CUDA_CHECK(cudaMemcpyAsync(segs_.data(), segments.data(), segments.size() * sizeof(Segment),
                                   cudaMemcpyHostToDevice, stream));
    DSD_CUDA_CHECK(cudaMemcpyAsync(group_begin_.data(), group_begin_host_.data(),
                                   group_begin_host_.size() * sizeof(std::uint64_t),
                                   cudaMemcpyHostToDevice, stream));
    release(stream);
    segments_ = static_cast<int>(segments.size());
    groups_ = groups;
    return groups;
  }
  /// The segments' groups that are the global `group`'s: (segment, element offset).
  [[nodiscard]] std::pair<std::size_t, std::uint64_t> locate(std::uint64_t position) const {
    const std::uint64_t g = position / detail::group_size;
    const auto it = std::upper_bound(group_begin_host_.begin(), group_begin_host_.end(), g);
    const std::size_t s = static_cast<std::size_t>(it - group_begin_host_.begin()) - 1;
    return {s, (g - group_begin_host_[s]) * detail::group_size + position % detail::group_size};
  }

  /// One device scalar for a reduction's result (e.g. the first non-finite index). Not one of
  /// the buffers `build_masks` reads: its users wait for their stream before they return.
  [[nodiscard]] unsigned long long* scalar() {
    scalar_.reserve(1);
    return scalar_.data();
  }

  /// Queues later work on `stream` after the workspace's last use on another stream; with
  /// `regrow` (buffers are about to be freed) the host waits for that use instead.
  void acquire(cudaStream_t stream, bool regrow = false) {
    if (!busy_) return;
    if (regrow) {
      done_.synchronize();
      busy_ = false;
    } else if (stream != last_) {
      done_.wait(stream);
    }
  }
  /// Notes that work just queued on `stream` uses the workspace and is not waited for.
  void release(cudaStream_t stream) {
    done_.record(stream);
    last_ = stream;
    busy_ = true;
  }
  /// Notes that the host has waited for a stream whose work was queued after every use.
  void settled() noexcept { busy_ = false; }

  DeviceBuffer<Segment> segs_;
  DeviceBuffer<std::uint64_t> group_begin_, ties_, scan_;
  DeviceBuffer<unsigned long long> counts_, hist_, scalar_;
  DeviceBuffer<detail::SelectState> state_;
  DeviceBuffer<unsigned char> temp_;
  std::vector<std::uint64_t> group_begin_host_;
  int segments_ = 0;
  std::uint64_t groups_ = 0;

 private:
  Event done_;  ///< the last use not waited for (created by the first use)
  cudaStream_t last_ = nullptr;
  bool busy_ = false;
};

/// This thread's workspace on the current device's default use (grown on demand, kept).
inline SelectWorkspace& default_workspace() {
  thread_local SelectWorkspace ws;
  return ws;
}

namespace detail {
inline unsigned group_grid(std::uint64_t groups) {
  const std::uint64_t warps_per_block = block_size / 32;
  const std::uint64_t blocks = (groups + warps_per_block - 1) / warps_per_block;
  constexpr std::uint64_t cap = 132 * 16;
  return static_cast<unsigned>(blocks == 0 ? 1 : std::min(blocks, cap));
}
}  // namespace detail

/// The key of 0-based `rank` among all keys of the segments (rank < total size), after
/// `ws.prepare(segments)`. Queues every pass on `stream` and waits once, for the result.
template <class Keys>
DeviceSelect select(const Keys& keys, SelectWorkspace& ws, std::uint64_t rank, cudaStream_t stream) {
  using K = typename Keys::key_type;
  const detail::SelectState init{0, 0, rank, 0, detail::no_index};
  ws.acquire(stream);
  DSD_CUDA_CHECK(cudaMemcpyAsync(ws.state_.data(), &init, sizeof init, cudaMemcpyHostToDevice, stream));
  DSD_CUDA_CHECK(cudaMemsetAsync(ws.hist_.data(), 0, detail::bins * sizeof(unsigned long long), stream));
  const unsigned grid = detail::group_grid(ws.groups_);
  // Digits from the highest one that can be non-zero: 4 passes for float, 7 for Random-Cut.
  constexpr int top = int((Keys::key_bits + detail::digit_bits - 1) / detail::digit_bits - 1) *
                      int(detail::digit_bits);
  static_assert(Keys::key_bits <= sizeof(K) * 8);
  for (int shift = top; shift >= 0; shift -= int(detail::digit_bits)) {
    detail::histogram<<<grid, block_size, 0, stream>>>(keys, ws.segs_.data(), ws.group_begin_.data(),
                                                       ws.segments_, ws.state_.data(), unsigned(shift),
                                                       shift == top,
                                                       ws.hist_.data());
    DSD_CUDA_CHECK(cudaGetLastError());
    detail::choose_bucket<><<<1, detail::bins, 0, stream>>>(ws.state_.data(), unsigned(shift), ws.hist_.data());
    DSD_CUDA_CHECK(cudaGetLastError());
  }
  detail::SelectState out;
  DSD_CUDA_CHECK(cudaMemcpyAsync(&out, ws.state_.data(), sizeof out, cudaMemcpyDeviceToHost, stream));
  DSD_CUDA_CHECK(cudaStreamSynchronize(stream));
  ws.settled();
  DeviceSelect r{out.prefix, out.less};
  if (out.bad != detail::no_index) {
    const auto [s, i] = ws.locate(out.bad);
    r.bad_segment = s;
    r.bad_index = i;
  }
  return r;
}

/// Writes every segment's mask words: the `prune` smallest keys over all segments (ties: lower
/// segment, then lower index first) pruned, all others kept, after `select` returned `r` for rank
/// prune - 1. Queued on `stream`; nothing is waited for (the workspace's next use on another
/// stream is queued after it).
template <class Keys>
void build_masks(const Keys& keys, SelectWorkspace& ws, std::uint64_t prune, cudaStream_t stream) {
  ws.acquire(stream);
  const unsigned grid = detail::group_grid(ws.groups_);
  detail::count_ties<<<grid, block_size, 0, stream>>>(keys, ws.segs_.data(), ws.group_begin_.data(),
                                                      ws.segments_, ws.state_.data(), ws.ties_.data());
  DSD_CUDA_CHECK(cudaGetLastError());
  std::size_t bytes = ws.temp_.size();
  DSD_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(ws.temp_.data(), bytes, ws.ties_.data(),
                                               ws.scan_.data(), static_cast<std::int64_t>(ws.groups_),
                                               stream));
  detail::build_words<<<grid, block_size, 0, stream>>>(keys, ws.segs_.data(), ws.group_begin_.data(),
                                                       ws.segments_, ws.state_.data(), prune,
                                                       ws.scan_.data());
  DSD_CUDA_CHECK(cudaGetLastError());
  ws.release(stream);
}

/// Per segment, how many keys lie below and at the selected key (waits for the result).
template <class Keys>
std::vector<std::pair<std::uint64_t, std::uint64_t>> count_below(const Keys& keys, SelectWorkspace& ws,
                                                                 cudaStream_t stream) {
  ws.acquire(stream);
  DSD_CUDA_CHECK(cudaMemsetAsync(ws.counts_.data(), 0, 2 * ws.segments_ * sizeof(unsigned long long), stream));
  detail::count_below<<<detail::group_grid(ws.groups_), block_size, 0, stream>>>(
      keys, ws.segs_.data(), ws.group_begin_.data(), ws.segments_, ws.state_.data(), ws.counts_.data());
  DSD_CUDA_CHECK(cudaGetLastError());
  std::vector<unsigned long long> host(2 * ws.segments_);
  DSD_CUDA_CHECK(cudaMemcpyAsync(host.data(), ws.counts_.data(), host.size() * sizeof(unsigned long long),
                                 cudaMemcpyDeviceToHost, stream));
  DSD_CUDA_CHECK(cudaStreamSynchronize(stream));
  ws.settled();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out(ws.segments_);
  for (int s = 0; s < ws.segments_; ++s) out[s] = {host[2 * s], host[2 * s + 1]};
  return out;
}

}  // namespace dsd::cuda
