#pragma once
/// \file
/// A layer's weight distribution: fixed, equal bins over a symmetric range, the pruned positions
/// counted apart. What the paper's figure of D → S → D plots at each phase boundary (the gap
/// around zero after pruning, the spike of restored zeros after re-dense). One pass over the
/// weights (two when the range is to be found), no copy; host layers (device layers: `dsd::cuda::weight_histogram`).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "dsd/masked.hpp"
#include "dsd/detail/parallel.hpp"
#include "dsd/error.hpp"
#include "dsd/io/detail/bins.hpp"
#include "dsd/layers.hpp"

namespace dsd::io {

/// How to bin: `bins` equal bins over [-range, range]; `range` 0 takes the layer's largest
/// finite kept |w| (so every kept finite weight falls in a bin), kept within [1e-300, 1e300]. A
/// range given must be 0 or within [1e-300, 1e300].
struct HistogramOptions {
  std::size_t bins = 64;
  double range = 0.0;
};

/// The histogram of one layer's weights.
struct WeightHistogram {
  std::string layer;
  double range = 0.0;                ///< the bins cover [-range, range]
  std::vector<std::uint64_t> counts;  ///< kept weights per bin; bin 0 starts at -range
  std::uint64_t pruned = 0;           ///< pruned positions (in no bin: their weights are zero)
  std::uint64_t below = 0;            ///< kept weights below -range (-inf included)
  std::uint64_t above = 0;            ///< kept weights above range (+inf included)

  /// Lower edge of bin `i` (`i` = bins gives the upper edge of the last): -range, the inner
  /// edges of `detail::inner_edge`, range. A weight x is in bin i when edge(i) <= x < edge(i+1),
  /// the last bin closed at range.
  [[nodiscard]] double edge(std::size_t i) const {
    const std::size_t n = counts.size();
    if (i == 0) return -range;
    if (i >= n) return range;
    return detail::inner_edge(static_cast<double>(i), 0.5 * static_cast<double>(n),
                              2.0 * range / static_cast<double>(n));
  }
  /// Kept weights, binned or outside the range.
  [[nodiscard]] std::uint64_t kept() const {
    std::uint64_t n = below + above;
    for (const auto c : counts) n += c;
    return n;
  }
};

namespace detail {
/// Refuses bins outside 1..2^24 and a range that is neither 0 nor within [min_range,
/// max_range], naming the layer (the host's and the device's checks).
inline void check_histogram_options(const std::string& layer, const HistogramOptions& options) {
  DSD_REQUIRE(options.bins >= 1 && options.bins <= (std::size_t{1} << 24), invalid_argument,
              "weight_histogram of layer \"", layer, "\": ", options.bins, " bins; give 1 to 16777216");
  DSD_REQUIRE(options.range == 0.0 || (options.range >= min_range && options.range <= max_range),
              invalid_argument, "weight_histogram of layer \"", layer, "\": range ", options.range,
              " must be 0 (found from the weights) or within [1e-300, 1e300]");
}

/// The range for a layer whose largest finite kept |w| is `largest`: 1 when that is 0 (every
/// kept weight zero), else `largest` kept within [min_range, max_range].
inline double range_from_largest(double largest) {
  if (largest == 0.0) return 1.0;
  return largest < min_range ? min_range : largest > max_range ? max_range : largest;
}

/// For each byte value, its 8 bits as 8 lanes of all-ones or zero `U`s: a mask word's bits
/// widened to lanes with 8 table reads, where a shift per bit does not vectorise on x86-64's
/// baseline (SSE2 has no per-lane variable shifts).
template <class U>
struct BitLanes {
  U lanes[256][8]{};
  constexpr BitLanes() {
    for (int b = 0; b < 256; ++b)
      for (int k = 0; k < 8; ++k) lanes[b][k] = (b >> k & 1) != 0 ? static_cast<U>(~U{0}) : U{0};
  }
};
template <class U>
inline constexpr BitLanes<U> bit_lanes{};

/// Widens the 64 bits of `word` into `out[0..64)` (all ones: kept).
template <class U>
inline void widen_bits(std::uint64_t word, U* out) {
  for (int b = 0; b < 8; ++b)
    std::memcpy(out + 8 * b, bit_lanes<U>.lanes[(word >> (8 * b)) & 0xFFu], 8 * sizeof(U));
}

/// The largest finite |w| over kept positions (0 when none), per chunk in parallel. Blocks of 64
/// weights, one mask word each, and a branch-free maximum on the weights' bits that the compiler
/// vectorises: |w| is the bits without the sign, a pruned position or a non-finite value (bits at
/// or above the infinity's) becomes 0, and for non-negative IEEE values the largest bits are the
/// largest value. Exact.
template <class S, class M>
double largest_kept(std::span<const S> w, const M& mask) {
  using U = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  using I = std::make_signed_t<U>;
  static_assert(sizeof(S) == sizeof(U) && std::numeric_limits<S>::is_iec559);
  constexpr U magnitude = static_cast<U>(~U{0}) >> 1;
  const auto infinity = static_cast<I>(std::bit_cast<U>(std::numeric_limits<S>::infinity()));
  const std::size_t blocks = (w.size() + 63) / 64, min_blocks = dsd::detail::parallel_threshold / 64;
  const std::size_t chunks = dsd::detail::parallel_chunk_count(blocks, min_blocks);
  std::vector<double> top(chunks, 0.0);
  dsd::detail::parallel_chunks_indexed(
      blocks, min_blocks, [&](std::size_t c, std::size_t first, std::size_t stop) noexcept {
        I best[16] = {};  // 16 running maxima, so that the loop has no dependency chain
        U kept[64];
        for (std::size_t blk = first; blk < stop; ++blk) {
          const std::size_t i0 = blk * 64, m = std::min<std::size_t>(64, w.size() - i0);
          if constexpr (requires { mask.words(); }) {
            widen_bits(mask.words()[blk], kept);
          } else {
            for (std::size_t j = 0; j < m; ++j) kept[j] = mask.test(i0 + j) ? static_cast<U>(~U{0}) : U{0};
          }
          const S* const x0 = w.data() + i0;
          const auto take = [&](std::size_t j, std::size_t lane) {
            U bits;
            std::memcpy(&bits, x0 + j, sizeof bits);
            const auto a = static_cast<I>(bits & magnitude & kept[j]);
            const I v = a < infinity ? a : I{0};
            best[lane] = v > best[lane] ? v : best[lane];
          };
          if (m == 64) {  // fixed trip counts: what the vectoriser needs
            for (std::size_t k = 0; k < 64; k += 16)
              for (std::size_t j = 0; j < 16; ++j) take(k + j, j);
          } else {
            for (std::size_t j = 0; j < m; ++j) take(j, j & 15);
          }
        }
        I t = 0;
        for (const I b : best) t = b > t ? b : t;
        top[c] = static_cast<double>(std::bit_cast<S>(static_cast<U>(t)));
      });
  return top.empty() ? 0.0 : *std::max_element(top.begin(), top.end());
}
}  // namespace detail

/// The histogram of `layer` (host memory). A NaN weight cannot be binned: it throws
/// `errc::non_finite` naming the layer and index. Bins hold kept positions only; a pruned
/// position is counted in `pruned` whatever it holds. `options.bins` must be 1 to 2^24 and
/// `options.range` 0 or within [1e-300, 1e300]; a range found is the largest finite kept |w|
/// kept within those bounds, and 1 for a layer whose kept weights are all zero.
template <masked_parameter L>
  requires(layer_space_v<L> == memory_space::host)
[[nodiscard]] WeightHistogram weight_histogram(const L& layer, const HistogramOptions& options = {}) {
  using S = typename L::scalar_type;
  detail::check_histogram_options(layer.name(), options);
  const std::span<const S> w = layer.weights();
  const auto& mask = layer.mask();
  WeightHistogram h{layer.name(), options.range, std::vector<std::uint64_t>(options.bins, 0)};
  if (h.range == 0.0) h.range = detail::range_from_largest(detail::largest_kept(w, mask));
  const double r = h.range, inv_r = 1.0 / r, half_n = 0.5 * static_cast<double>(options.bins),
               width = 2.0 * r / static_cast<double>(options.bins);
  const auto last = static_cast<double>(options.bins - 1);
  // Each weight goes to one slot, chosen without branches: its bin, or pruned, below, above,
  // NaN after the bins. Four interleaved copies of the slots keep a run of equal slots from
  // serialising on one counter; they and the chunks are summed at the end.
  const auto pruned = static_cast<std::uint32_t>(options.bins), below = pruned + 1,
             above = pruned + 2, nan_slot = pruned + 3;
  const std::size_t stride = pruned + 4;
  // Blocks of 64 weights (one mask word): their slots computed in a loop the compiler
  // vectorises, then counted; chunks hold whole blocks.
  const std::size_t blocks = (w.size() + 63) / 64, min_blocks = dsd::detail::parallel_threshold / 64;
  const std::size_t chunks = dsd::detail::parallel_chunk_count(blocks, min_blocks);
  std::vector<std::uint64_t> slots(chunks * 4 * stride, 0);
  dsd::detail::parallel_chunks_indexed(
      blocks, min_blocks,
      [&](std::size_t c, std::size_t first, std::size_t stop) noexcept {
        std::uint64_t* const part = slots.data() + c * 4 * stride;
        std::uint32_t slot[64];
        std::uint8_t kept[64];
        for (std::size_t blk = first; blk < stop; ++blk) {
          const std::size_t i0 = blk * 64, m = std::min<std::size_t>(64, w.size() - i0);
          if constexpr (requires { mask.words(); }) {  // a bit mask: this block is one word
            detail::widen_bits(mask.words()[blk], kept);
            for (std::size_t j = 0; j < m; ++j) kept[j] &= 1u;
          } else {
            for (std::size_t j = 0; j < m; ++j) kept[j] = mask.test(i0 + j) ? 1 : 0;
          }
          const S* const x0 = w.data() + i0;
          const auto slot_of = [&](std::size_t j) {
            const auto x = static_cast<double>(x0[j]);
            const std::uint32_t bin = detail::bin_of(x, inv_r, half_n, width, last);  // any x: a valid index
            // Arithmetic, not branches: a random mask would mispredict half of them.
            const std::uint32_t in = (x >= -r) & (x <= r), lo = x < -r, hi = x > r, bad = x != x;
            const std::uint32_t where = bin * in + below * lo + above * hi + nan_slot * bad;
            slot[j] = pruned + kept[j] * (where - pruned);  // unsigned wrap is exact
          };
          if (m == 64) {  // a fixed trip count: what the vectoriser needs
            for (std::size_t j = 0; j < 64; ++j) slot_of(j);
          } else {
            for (std::size_t j = 0; j < m; ++j) slot_of(j);
          }
          for (std::size_t j = 0; j < m; ++j) ++part[(j & 3) * stride + slot[j]];
        }
      });
  std::vector<std::uint64_t> total(stride, 0);
  for (std::size_t k = 0; k < chunks * 4; ++k)
    for (std::size_t j = 0; j < stride; ++j) total[j] += slots[k * stride + j];
  std::copy_n(total.begin(), options.bins, h.counts.begin());
  h.pruned = total[pruned], h.below = total[below], h.above = total[above];
  const std::uint64_t nan = total[nan_slot];
  if (nan > 0)
    for (std::size_t i = 0; i < w.size(); ++i)
      DSD_REQUIRE(!(mask.test(i) && w[i] != w[i]), non_finite, "layer \"", layer.name(),
                  "\" has a NaN weight at index ", i, "; its histogram cannot bin it");
  return h;
}

/// The histograms of every layer of `layers`, in order, each over its own range.
template <layer_collection C>
[[nodiscard]] std::vector<WeightHistogram> weight_histograms(C& layers,
                                                             const HistogramOptions& options = {}) {
  std::vector<WeightHistogram> out;
  for_each_layer(layers, [&](const auto& l, std::size_t) { out.push_back(weight_histogram(l, options)); });
  return out;
}

}  // namespace dsd::io
