#pragma once
/// \file
/// Keep/prune masks: bit-packed (`BitMask`) and one byte per weight (`ByteMask`).
///
/// A set entry means "kept". Both types are regular values (copyable, comparable) with the same
/// interface, captured by the `mask_storage` concept; the fused kernels read their raw storage.

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "dsd/config.hpp"
#include "dsd/detail/parallel.hpp"
#include "dsd/error.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

namespace detail {
// Bit j of a 32-bit word, as a table: `(word & bit32[j]) != 0` vectorises with plain SSE2
// (and, compare) where a per-lane variable shift would need AVX2. Reading bits (for_each_masked)
// uses it; packing them (BitMask::assign) is faster with a shift per entry.
inline constexpr std::uint32_t bit32[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};
}  // namespace detail

/// One bit per weight in 64-bit words; bit `i % 64` of word `i / 64` is weight `i`.
/// Bits past `size()` in the last word are always zero.
class BitMask {
 public:
  BitMask() = default;
  /// A mask of `n` entries, all kept (or all pruned when `kept` is false).
  explicit BitMask(std::size_t n, bool kept = true) : words_((n + 63) / 64), size_(n) {
    fill(kept);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool test(std::size_t i) const noexcept {
    return (words_[i >> 6] >> (i & 63)) & 1u;
  }
  void set(std::size_t i, bool kept) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    words_[i >> 6] = kept ? (words_[i >> 6] | bit) : (words_[i >> 6] & ~bit);
  }
  /// Sets every entry to `kept`.
  void fill(bool kept) noexcept {
    for (auto& w : words_) w = kept ? ~std::uint64_t{0} : 0;
    clear_tail();
  }
  /// Sets entry `i` to `keep(i)` for every `i`, packing 64 entries per store. `keep` must be a
  /// pure function of `i`: large masks are filled by several threads, in no particular order.
  template <class Pred>
  void assign(Pred&& keep) {
    const std::size_t full = size_ / 64;
    detail::parallel_chunks(full, detail::parallel_threshold / 64,
                            [&](std::size_t wb, std::size_t we) noexcept(
                                std::is_nothrow_invocable_r_v<bool, Pred&, std::size_t>) {
                              for (std::size_t w = wb; w < we; ++w) {
                                // A shift per entry packs faster than an OR over the bit
                                // table (bench mask/keepmax).
                                std::uint64_t word = 0;
                                for (std::size_t j = 0; j < 64; ++j)
                                  word |= std::uint64_t{static_cast<bool>(keep(w * 64 + j))} << j;
                                words_[w] = word;
                              }
                            });
    if (full < words_.size()) {
      std::uint64_t word = 0;
      for (std::size_t i = full * 64; i < size_; ++i)
        word |= std::uint64_t{static_cast<bool>(keep(i))} << (i & 63);
      words_[full] = word;
    }
  }
  /// Number of kept entries.
  [[nodiscard]] std::size_t count() const noexcept {
    std::size_t c = 0;
    for (auto w : words_) c += static_cast<std::size_t>(std::popcount(w));
    return c;
  }
  /// Calls `f(i)` for each kept index, in increasing order.
  template <class F>
  void for_each_kept(F&& f) const {
    for (std::size_t w = 0; w < words_.size(); ++w)
      for (std::uint64_t word = words_[w]; word != 0; word &= word - 1)
        f(w * 64 + static_cast<std::size_t>(std::countr_zero(word)));
  }
  /// Packed storage, for kernels and serialisation.
  /// The packed words, read-only: writing them could break the mask's invariants (tail bits).
  [[nodiscard]] std::span<const std::uint64_t> words() const noexcept { return words_; }

  /// A mask of `n` entries from packed words (bit i % 64 of word i / 64), e.g. copied from a
  /// device. Throws unless there are exactly (n + 63) / 64 words and no bit past `n` is set.
  [[nodiscard]] static BitMask from_words(std::span<const std::uint64_t> words, std::size_t n) {
    DSD_REQUIRE(n <= std::numeric_limits<std::size_t>::max() - 63 && words.size() == (n + 63) / 64,
                size_mismatch, "BitMask of ", n, " entries from ", words.size(), " words; expected ",
                n / 64 + (n % 64 != 0));
    DSD_REQUIRE(n % 64 == 0 || words.empty() || (words.back() >> (n % 64)) == 0, invalid_argument,
                "BitMask of ", n, " entries from words with bits set past entry ", n);
    BitMask m;
    m.words_.assign(words.begin(), words.end());
    m.size_ = n;
    return m;
  }

  friend bool operator==(const BitMask&, const BitMask&) = default;

 private:
  void clear_tail() noexcept {
    if (size_ % 64 != 0) words_.back() &= (std::uint64_t{1} << (size_ % 64)) - 1;
  }
  std::vector<std::uint64_t> words_;
  std::size_t size_ = 0;
};

/// One byte per weight (0 = pruned, 1 = kept): 8x the memory of `BitMask`, simplest to index.
class ByteMask {
 public:
  ByteMask() = default;
  explicit ByteMask(std::size_t n, bool kept = true) : bytes_(n, kept ? 1 : 0) {}

  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  [[nodiscard]] bool test(std::size_t i) const noexcept { return bytes_[i] != 0; }
  void set(std::size_t i, bool kept) noexcept { bytes_[i] = kept ? 1 : 0; }
  void fill(bool kept) noexcept {
    for (auto& b : bytes_) b = kept ? 1 : 0;
  }
  /// Sets entry `i` to `keep(i)`; `keep` must be pure (large masks are filled in parallel).
  template <class Pred>
  void assign(Pred&& keep) {
    detail::parallel_chunks(bytes_.size(), detail::parallel_threshold,
                            [&](std::size_t b, std::size_t e) noexcept(
                                std::is_nothrow_invocable_r_v<bool, Pred&, std::size_t>) {
                              for (std::size_t i = b; i < e; ++i) bytes_[i] = keep(i) ? 1 : 0;
                            });
  }
  [[nodiscard]] std::size_t count() const noexcept {
    std::size_t c = 0;
    for (auto b : bytes_) c += b != 0;
    return c;
  }
  template <class F>
  void for_each_kept(F&& f) const {
    for (std::size_t i = 0; i < bytes_.size(); ++i)
      if (bytes_[i]) f(i);
  }
  /// The bytes (0 or 1), read-only: a byte written as anything else would break the mask.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return bytes_; }

  /// A mask from bytes that are each 0 (pruned) or 1 (kept); throws on any other value.
  [[nodiscard]] static ByteMask from_bytes(std::span<const std::uint8_t> bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
      DSD_REQUIRE(bytes[i] <= 1, invalid_argument, "ByteMask byte ", i, " is ", int(bytes[i]),
                  "; entries must be 0 (pruned) or 1 (kept)");
    ByteMask m;
    m.bytes_.assign(bytes.begin(), bytes.end());
    return m;
  }

  friend bool operator==(const ByteMask&, const ByteMask&) = default;

 private:
  std::vector<std::uint8_t> bytes_;
};

namespace detail {
// Named stand-ins for the callables a mask accepts (nvcc's front end rejects lambdas inside
// requires-expressions).
struct index_predicate {
  bool operator()(std::size_t) const noexcept { return true; }
};
struct index_visitor {
  void operator()(std::size_t) const noexcept {}
};
}  // namespace detail

/// The interface every mask type offers; a user mask plugs in by providing it.
template <class M>
concept mask_storage = std::regular<M> && std::constructible_from<M, std::size_t, bool> &&
    requires(M m, const M cm, std::size_t i, bool b) {
  { cm.size() } -> std::convertible_to<std::size_t>;
  { cm.test(i) } -> std::convertible_to<bool>;
  { cm.count() } -> std::convertible_to<std::size_t>;
  m.set(i, b);
  m.fill(b);
  m.assign(detail::index_predicate{});
  cm.for_each_kept(detail::index_visitor{});
};

/// Fraction of kept entries (1 for an empty mask).
template <mask_storage M>
[[nodiscard]] double density(const M& m) noexcept {
  return m.size() == 0 ? 1.0 : static_cast<double>(m.count()) / static_cast<double>(m.size());
}

/// Fraction of pruned entries.
template <mask_storage M>
[[nodiscard]] double sparsity(const M& m) noexcept {
  return 1.0 - density(m);
}

/// Number of entries whose kept/pruned state differs between two masks of the same size.
template <mask_storage M>
[[nodiscard]] std::size_t changed_entries(const M& a, const M& b) {
  DSD_REQUIRE(a.size() == b.size(), size_mismatch, "comparing masks of ", a.size(), " and ",
              b.size(), " entries");
  if constexpr (std::is_same_v<M, BitMask>) {
    std::size_t c = 0;
    for (std::size_t w = 0; w < a.words().size(); ++w)
      c += static_cast<std::size_t>(std::popcount(a.words()[w] ^ b.words()[w]));
    return c;
  } else {
    std::size_t c = 0;
    for (std::size_t i = 0; i < a.size(); ++i) c += a.test(i) != b.test(i);
    return c;
  }
}

namespace detail {

/// `x` where kept, exactly +0 where pruned (a select, not a multiply: no -0, no NaN * 0). On the
/// host a bitwise AND: pure data flow, so the compiler cannot sink the computation of `x` into a
/// branch (which blocks vectorisation of divisions and square roots).
template <class S>
DSD_HOST_DEVICE S kept_or_zero(bool keep, S x) noexcept {
#if defined(__CUDA_ARCH__)
  return keep ? x : S(0);
#else
  using U = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  return std::bit_cast<S>(static_cast<U>(std::bit_cast<U>(x) & (U{0} - U{keep})));
#endif
}

/// Calls `f(i, keep)` for every index of the mask, in vectorisable blocks of 32 and in parallel
/// chunks of whole words for large masks. `f` must only touch element `i` of its arrays.
template <class F>
inline void for_each_masked(const BitMask& m, F&& f) {
  const std::uint64_t* words = m.words().data();
  const std::size_t n = m.size(), full = n / 64;
  constexpr bool nothrow = std::is_nothrow_invocable_v<F&, std::size_t, bool>;
  parallel_chunks(full, parallel_threshold / 64, [&](std::size_t wb, std::size_t we) noexcept(nothrow) {
    for (std::size_t w = wb; w < we; ++w) {
      const std::size_t base = w * 64;
      const auto lo = static_cast<std::uint32_t>(words[w]);
      const auto hi = static_cast<std::uint32_t>(words[w] >> 32);
      DSD_PRAGMA_SIMD
      for (std::size_t j = 0; j < 32; ++j) f(base + j, (lo & bit32[j]) != 0);
      DSD_PRAGMA_SIMD
      for (std::size_t j = 0; j < 32; ++j) f(base + 32 + j, (hi & bit32[j]) != 0);
    }
  });
  for (std::size_t i = full * 64; i < n; ++i) f(i, ((words[full] >> (i & 63)) & 1u) != 0);
}

template <class F>
inline void for_each_masked(const ByteMask& m, F&& f) {
  const std::uint8_t* b = m.bytes().data();
  constexpr bool nothrow = std::is_nothrow_invocable_v<F&, std::size_t, bool>;
  parallel_chunks(m.size(), parallel_threshold, [&](std::size_t begin, std::size_t end) noexcept(nothrow) {
    DSD_PRAGMA_SIMD
    for (std::size_t i = begin; i < end; ++i) f(i, b[i] != 0);
  });
}

template <mask_storage M, class F>
inline void for_each_masked(const M& m, F&& f) {
  for (std::size_t i = 0; i < m.size(); ++i) f(i, m.test(i));
}

/// x[i] = +0 wherever `m` prunes i (`x` holds m.size() values): enforcing a mask on weights,
/// optimizer state or a gradient.
template <class M, class S>
inline void zero_where_pruned(const M& m, S* x) {
  for_each_masked(m, [&](std::size_t i, bool keep) noexcept { x[i] = kept_or_zero(keep, x[i]); });
}

}  // namespace detail
}  // namespace dsd
