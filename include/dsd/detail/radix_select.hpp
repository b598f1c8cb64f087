#pragma once
// Exact k-th smallest key by most-significant-digit radix select over one or more segments,
// 16 bits per pass, no copies and no allocation proportional to n. Integer histograms make the
// result independent of the number of threads.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "dsd/detail/parallel.hpp"

namespace dsd::detail {

/// The selected key and how many keys are strictly smaller than it.
template <class Key>
struct SelectResult {
  Key key{};
  std::size_t less = 0;
};

inline constexpr unsigned radix_bits = 16;
inline constexpr std::size_t radix_bins = std::size_t{1} << radix_bits;
/// Below this many keys a segment is histogrammed by one thread (thread start-up dominates).
inline constexpr std::size_t parallel_grain = std::size_t{1} << 16;

/// Per-chunk counters of one histogram pass, allocated before the parallel region (so the
/// counting itself cannot fail) and reused from pass to pass.
struct HistogramScratch {
  std::vector<std::uint32_t> counts;  ///< two 32-bit histograms (even, odd positions) per chunk
  std::vector<std::uint64_t> wide;    ///< 64-bit totals per chunk, only for chunks of > 2^32 - 1 keys
};

/// Adds to `hist` the digit at `shift` (`Bits` wide) of every key of segment `s` whose bits above
/// the digit equal `prefix` (under `prefix_mask`). Each chunk counts a contiguous range into two
/// histograms of its own (even and odd positions), so runs of keys in the same bin do not
/// serialise on one counter; the chunks' counts are summed afterwards, in chunk order. The
/// histograms are 32-bit (twice as cache-friendly); a chunk of more than 2^32 - 1 keys is counted
/// in sub-chunks flushed into 64-bit totals, so no counter wraps on a huge tensor. Nothing inside
/// the parallel region allocates or locks: with a key function that cannot throw it runs without
/// exception capture.
template <class Key, unsigned Bits = radix_bits, class KeyAt>
void histogram_segment(std::size_t s, std::size_t n, const KeyAt& key_at, Key prefix,
                       Key prefix_mask, unsigned shift, std::vector<std::uint64_t>& hist,
                       HistogramScratch& scratch) {
  constexpr std::size_t bins = std::size_t{1} << Bits;
  constexpr Key digit = static_cast<Key>(bins - 1);
  constexpr std::size_t max_sub = 0xffffffffu;
  const std::size_t chunks = parallel_chunk_count(n, parallel_grain);
  scratch.counts.assign(chunks * 2 * bins, 0u);
  // Sized by the whole segment, not by n / chunks: the runtime may give fewer threads than
  // chunks (a thread limit, OMP_DYNAMIC), and then each chunk is larger.
  const bool wide = n > max_sub;
  if (wide) scratch.wide.assign(chunks * bins, 0);
  constexpr bool nothrow = std::is_nothrow_invocable_r_v<Key, const KeyAt&, std::size_t, std::size_t>;
  parallel_chunks_indexed(n, parallel_grain, [&](std::size_t c, std::size_t begin,
                                                 std::size_t end) noexcept(nothrow) {
    std::uint32_t* h0 = scratch.counts.data() + c * 2 * bins;
    std::uint32_t* h1 = h0 + bins;
    const auto count = [&](std::size_t i, std::size_t stop) {
      if (prefix_mask == 0) {  // first pass: every key counts
        for (; i + 1 < stop; i += 2) {
          ++h0[(key_at(s, i) >> shift) & digit];
          ++h1[(key_at(s, i + 1) >> shift) & digit];
        }
      }
      for (; i < stop; ++i) {  // later passes: few keys match the prefix
        const Key k = key_at(s, i);
        if ((k & prefix_mask) == prefix) ++h0[(k >> shift) & digit];
      }
    };
    for (; end - begin > max_sub; begin += max_sub) {
      count(begin, begin + max_sub);
      std::uint64_t* total = scratch.wide.data() + c * bins;
      for (std::size_t b = 0; b < bins; ++b) total[b] += std::uint64_t{h0[b]} + h1[b];
      std::fill(h0, h1 + bins, 0u);
    }
    count(begin, end);
  });
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::uint32_t* h0 = scratch.counts.data() + c * 2 * bins;
    const std::uint32_t* h1 = h0 + bins;
    for (std::size_t b = 0; b < bins; ++b) hist[b] += std::uint64_t{h0[b]} + h1[b];
    if (wide)
      for (std::size_t b = 0; b < bins; ++b) hist[b] += scratch.wide[c * bins + b];
  }
}

/// No combining: every key is local.
struct LocalKeys {
  void operator()(std::vector<std::uint64_t>&) const noexcept {}
};

/// The key of 0-based rank `rank` among all keys `key_at(s, i)`, s < sizes.size(), i < sizes[s],
/// `Bits` key bits per histogram pass. `combine(hist)` turns this process's histogram of a pass
/// into the histogram of every key (a sharded select all-reduces it; a local one leaves it).
/// Requires rank < total number of keys; a rank beyond them selects a key in the last bins
/// instead of reading past the histogram.
template <class Key, unsigned Bits = radix_bits, class KeyAt, class Combine = LocalKeys>
SelectResult<Key> radix_select(std::span<const std::size_t> sizes, const KeyAt& key_at,
                               std::uint64_t rank, const Combine& combine = {}) {
  static_assert(std::is_unsigned_v<Key>);
  static_assert(Bits > 0 && (sizeof(Key) * 8) % Bits == 0, "dsd: digits must tile the key");
  constexpr unsigned key_bits = sizeof(Key) * 8;
  constexpr std::size_t bins = std::size_t{1} << Bits;
  std::vector<std::uint64_t> hist(bins);
  HistogramScratch scratch;
  Key prefix = 0;
  Key prefix_mask = 0;
  std::uint64_t less = 0;
  for (unsigned shift = key_bits - Bits;; shift -= Bits) {
    std::fill(hist.begin(), hist.end(), 0);
    for (std::size_t s = 0; s < sizes.size(); ++s)
      histogram_segment<Key, Bits>(s, sizes[s], key_at, prefix, prefix_mask, shift, hist, scratch);
    combine(hist);
    std::size_t b = 0;
    for (; b + 1 < bins && rank >= hist[b]; ++b) rank -= hist[b], less += hist[b];
    prefix |= static_cast<Key>(static_cast<Key>(b) << shift);
    prefix_mask |= static_cast<Key>(static_cast<Key>(bins - 1) << shift);
    if (shift == 0) break;
  }
  return {prefix, static_cast<std::size_t>(less)};
}

/// Order-preserving unsigned key of |x|: clearing the sign bit of an IEEE float leaves its
/// magnitude ordered as an unsigned integer (zeros, denormals, normals, Inf, then NaNs).
template <class S>
auto magnitude_key(S x) noexcept {
  if constexpr (std::is_same_v<S, float>)
    return std::bit_cast<std::uint32_t>(x) & 0x7fffffffu;
  else
    return std::bit_cast<std::uint64_t>(x) & 0x7fffffffffffffffull;
}

/// Unsigned key type of a scalar.
template <class S>
using key_type = decltype(magnitude_key(S{}));

/// The magnitude whose key is `k`.
template <class S>
S magnitude_from_key(key_type<S> k) noexcept {
  return std::bit_cast<S>(k);
}

/// Key of the smallest non-finite magnitude (+Inf); every key at or above it is Inf or NaN.
template <class S>
constexpr key_type<S> non_finite_key() noexcept {
  if constexpr (std::is_same_v<S, float>)
    return 0x7f800000u;
  else
    return 0x7ff0000000000000ull;
}

/// Order-preserving unsigned key of any float/double score (negative scores sort first).
template <class S>
auto ordered_key(S x) noexcept {
  using K = key_type<S>;
  const K bits = std::bit_cast<K>(x);
  constexpr K sign = K{1} << (sizeof(K) * 8 - 1);
  return (bits & sign) ? static_cast<K>(~bits) : static_cast<K>(bits | sign);
}

/// Inverse of `ordered_key`.
template <class S>
S score_from_key(key_type<S> k) noexcept {
  using K = key_type<S>;
  constexpr K sign = K{1} << (sizeof(K) * 8 - 1);
  return std::bit_cast<S>((k & sign) ? static_cast<K>(k & ~sign) : static_cast<K>(~k));
}

}  // namespace dsd::detail
