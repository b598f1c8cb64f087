#pragma once
/// \file
/// The pruning-policy contract and the exact-count selection every ranking policy builds on.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "dsd/detail/radix_select.hpp"
#include "dsd/error.hpp"
#include "dsd/mask.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

/// What a policy may know about the layer it prunes besides its weights.
struct PruneInfo {
  std::string_view name;  ///< the layer's name (RandomCut derives its stream from it)
  Shape shape;            ///< storage-order shape (N:M groups run along `inner`)
};

/// A pruning policy: a small struct with a `name` and a `build_mask` that marks exactly
/// `w.size() - prune` entries as kept. Example:
/// \code
/// struct SmallestFirstCut {
///   static constexpr std::string_view name = "smallest-first";
///   template <class S, class M>
///   void build_mask(std::span<const S> w, std::size_t prune, M& mask, const dsd::PruneInfo&) const
///   {
///     dsd::prune_lowest(w.size(), prune, mask, [&](std::size_t i) { return w[i]; });
///   }
/// };
/// \endcode
template <class P, class S, class M = BitMask>
concept pruning_policy = floating_scalar<S> && mask_storage<M> &&
    requires(const P& p, std::span<const S> w, std::size_t k, M& m, const PruneInfo& info) {
  { P::name } -> std::convertible_to<std::string_view>;
  p.build_mask(w, k, m, info);
};

namespace detail {
/// Fills `mask` (n entries) from a cut at `key`: keys below it are pruned, and of the keys equal
/// to it the `ties` at the lowest indices; every other entry is kept. The one rule by which every
/// Keepmax-Cut and Random-Cut mask is built from its cut (single layer, and a shard's share of a
/// sharded cut). The mask is a pure, branch-free function of the index, so it is built in
/// parallel and vectorised.
template <class K, mask_storage M, class KeyAt>
void assign_cut_mask(std::size_t n, const KeyAt& key_at, K key, std::size_t ties, M& mask) {
  constexpr bool nothrow = std::is_nothrow_invocable_r_v<K, const KeyAt&, std::size_t>;
  std::size_t first_kept_tie = 0;
  for (std::size_t i = 0; ties > 0 && i < n; ++i)
    if (key_at(i) == key) --ties, first_kept_tie = i + 1;
  mask.assign([&](std::size_t i) noexcept(nothrow) {
    const K k = key_at(i);
    return (k > key) | ((k == key) & (i >= first_kept_tie));
  });
}

/// Prunes the `prune` entries (at least one) with the lowest unsigned `key_at(i)` (ties: lower
/// index first) and returns the largest pruned key.
template <class K, mask_storage M, class KeyAt>
K prune_lowest_keys(std::size_t n, std::size_t prune, M& mask, const KeyAt& key_at) {
  constexpr bool nothrow = std::is_nothrow_invocable_r_v<K, const KeyAt&, std::size_t>;
  const std::size_t sizes[] = {n};
  const auto r = radix_select<K>(
      sizes, [&](std::size_t, std::size_t i) noexcept(nothrow) { return key_at(i); }, prune - 1);
  // Keys below r.key are pruned, and of the keys equal to it the first (prune - r.less) by index.
  assign_cut_mask(n, key_at, r.key, prune - r.less, mask);
  return r.key;
}
}  // namespace detail

/// Marks in `mask` (of `n` entries) the `prune` entries with the lowest `score(i)` as pruned and
/// all others as kept. Ties are broken by index: among equal scores (-0 equals +0) the lower
/// index is pruned first. `score` returns float or double; the selection is an O(n) radix select.
/// Returns the highest pruned score (0 when nothing is pruned). A NaN score cannot be ranked: it
/// throws `errc::non_finite` naming the entry, and the mask is left as it was.
template <mask_storage M, class Score>
auto prune_lowest(std::size_t n, std::size_t prune, M& mask, const Score& score) {
  using S = std::remove_cvref_t<decltype(score(std::size_t{0}))>;
  static_assert(floating_scalar<S>, "dsd: a prune_lowest score must return float or double");
  if (prune == 0) {
    mask.fill(true);
    return S{0};
  }
  if (prune > n) prune = n;
  const auto key = detail::prune_lowest_keys<detail::key_type<S>>(n, prune, mask, [&](std::size_t i) {
    const S x = score(i);
    if (x != x) [[unlikely]]
      DSD_THROW(non_finite, "score of entry ", i, " is NaN; prune_lowest cannot rank it");
    return detail::ordered_key(x + S{0});  // -0 + 0 = +0: both zeros rank as one value
  });
  return detail::score_from_key<S>(key);
}

}  // namespace dsd
