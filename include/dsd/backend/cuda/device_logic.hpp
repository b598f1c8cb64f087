#pragma once
// The index arithmetic of the CUDA backend's kernels as host-device functions, so the CPU test
// suite checks exactly the code the kernels run (tests/test_device_logic.cpp); a kernel differs
// from tested code only in how it iterates. Also the host-side rules the GPU code decides by (the
// limits of cuSPARSE's 32-bit indices, the growth of a device scratch buffer), for the same reason.

#include <cstddef>
#include <cstdint>
#include <limits>

#include "dsd/config.hpp"

namespace dsd::detail {

/// Index of the last entry of the ascending table `begin[0..n]` (begin[0] = 0) that is <= g: the
/// segment (layer) owning global group `g` of a multi-tensor launch. Requires g < begin[n].
DSD_HOST_DEVICE int owning_segment(const std::uint64_t* begin, int n, std::uint64_t g) {
  int lo = 0, hi = n;  // begin[lo] <= g < begin[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (begin[mid] <= g ? lo : hi) = mid;
  }
  return lo;
}

/// `bits` with its lowest `drop` set bits cleared: the ties at the threshold that a selection
/// prunes in this word, lowest index first.
DSD_HOST_DEVICE std::uint64_t clear_lowest_bits(std::uint64_t bits, std::uint64_t drop) {
  for (; drop > 0 && bits != 0; --drop) bits &= bits - 1;
  return bits;
}

/// How many ties this word must prune: the selection's tie budget less the ties before it.
DSD_HOST_DEVICE std::uint64_t ties_to_drop(std::uint64_t budget, std::uint64_t ties_before) {
  return budget > ties_before ? budget - ties_before : 0;
}

/// Number of set bits among bits [begin, end) of a BitMask's words (whole words where possible):
/// a row's kept count for CSR.
DSD_HOST_DEVICE std::size_t count_bits(const std::uint64_t* words, std::size_t begin, std::size_t end) {
  std::size_t c = 0, i = begin;
  for (; i < end && (i & 63) != 0; ++i) c += (words[i >> 6] >> (i & 63)) & 1u;
  for (; i + 64 <= end; i += 64) {
#if defined(__CUDA_ARCH__)
    c += static_cast<std::size_t>(__popcll(words[i >> 6]));
#else
    c += static_cast<std::size_t>(__builtin_popcountll(words[i >> 6]));
#endif
  }
  for (; i < end; ++i) c += (words[i >> 6] >> (i & 63)) & 1u;
  return c;
}

/// The most entries a CSR matrix with cuSPARSE's 32-bit indices can hold (its rows and columns
/// stay below it): row offsets and column indices are `int`, and so are csr2csc's sizes.
inline constexpr std::uint64_t int32_csr_limit =
    static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());

/// Whether a rows x cols pattern with `nnz` kept entries fits CSR with 32-bit indices. `nnz` is
/// counted in 64 bits: a 65536 x 65536 layer has rows and columns within the limit but, 30 %
/// pruned, keeps 3,006,477,107 entries, past what an `int` offset holds.
DSD_HOST_DEVICE bool fits_int32_csr(std::uint64_t rows, std::uint64_t cols, std::uint64_t nnz) {
  return rows < int32_csr_limit && cols < int32_csr_limit && nnz <= int32_csr_limit;
}

/// Makes the scratch array `p` (of `capacity` elements) hold at least `n`, with the strong
/// guarantee: `allocate(n)` returns the new array or throws, and only once it succeeded is the old
/// one handed to `release` and are `p` and `capacity` changed, so after a failed allocation both
/// still describe the old, usable array. Never shrinks. Returns `p`.
template <class T, class Allocate, class Release>
T* grow_scratch(T*& p, std::size_t& capacity, std::size_t n, Allocate&& allocate,
                Release&& release) {
  if (n <= capacity) return p;
  T* const fresh = allocate(n);
  T* const old = p;
  p = fresh;
  capacity = n;
  if (old != nullptr) release(old);  // may throw; the new array is already in place
  return p;
}

}  // namespace dsd::detail
