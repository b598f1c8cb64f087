#pragma once
/// \file
/// Pruning sharded layers (ZeRO/FSDP style: each rank holds a contiguous slice of every weight
/// tensor, slices in rank order) without gathering weights: per-shard radix histograms combined
/// by all-reduce, ties at the threshold resolved by an exclusive scan of per-rank tie counts in
/// global index order. The masks are exactly those the single-process `prune` gives on the
/// concatenated tensors.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dsd/detail/counter_rng.hpp"
#include "dsd/detail/finite.hpp"
#include "dsd/detail/radix_select.hpp"
#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/masked.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/nm_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/pruning/prune_layers.hpp"
#include "dsd/pruning/random_cut.hpp"
#include "dsd/threshold/cut.hpp"
#include "dsd/threshold/global_cut.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/layer_sparsity.hpp"
#include "dsd/threshold/policy.hpp"
#include "dsd/threshold/prune_count.hpp"
#include "dsd/threshold/uniform_sparsity.hpp"

namespace dsd::dist {

/// This rank's share of the exact global cut of the `k` lowest keys.
template <class Key>
struct LocalCut {
  Key key{};                    ///< the k-th lowest key over all ranks
  std::size_t prune_local = 0;  ///< keys pruned on this rank: those below `key` plus `ties`
  std::size_t ties = 0;         ///< keys equal to `key` pruned here (the lowest local indices)
};

namespace detail {

/// 8-bit digits: a pass all-reduces 256 counters (2 KiB), four passes for float keys.
inline constexpr unsigned shard_digit_bits = 8;

/// The key of global 0-based rank `rank` over every rank's segments, and how many keys (all
/// ranks) are below it: the radix select of one process, each pass's histogram all-reduced (256
/// counters per 8 key bits).
template <class Key, communicator Comm, class KeyAt>
dsd::detail::SelectResult<Key> sharded_select(std::span<const std::size_t> sizes,
                                              const KeyAt& key_at, std::uint64_t rank, Comm& comm) {
  return dsd::detail::radix_select<Key, shard_digit_bits>(
      sizes, key_at, rank, [&](std::vector<std::uint64_t>& hist) { comm.all_reduce_sum(hist); });
}

/// This rank's share of `ties_needed` ties at a cut key, given its `equal_local` ties: the ranks
/// below take theirs first (global index order). One exclusive scan.
template <communicator Comm>
std::size_t tie_quota(std::uint64_t ties_needed, std::size_t equal_local, Comm& comm) {
  const std::uint64_t before = comm.exclusive_scan_sum(equal_local);
  return static_cast<std::size_t>(
      before >= ties_needed ? 0 : std::min<std::uint64_t>(equal_local, ties_needed - before));
}

}  // namespace detail

/// The exact cut of the `k` lowest keys over the concatenation of every rank's `n` local keys
/// `key_at(i)` (rank order, then index order), ties pruned from the lowest global index. `k` must
/// be the same on every rank and at most the global count; `n` may be 0. Collective: one
/// all-reduce of 256 counters per 8 key bits, one exclusive scan.
template <class Key, communicator Comm, class KeyAt>
[[nodiscard]] LocalCut<Key> cut_lowest(std::size_t n, const KeyAt& key_at, std::uint64_t k,
                                       Comm& comm) {
  if (k == 0) return {};
  const std::size_t sizes[] = {n};
  const auto r = detail::sharded_select<Key>(
      sizes,
      [&](std::size_t, std::size_t i) noexcept(std::is_nothrow_invocable_v<const KeyAt&, std::size_t>) {
        return key_at(i);
      },
      k - 1, comm);
  std::size_t less_local = 0, equal_local = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Key key = key_at(i);
    less_local += key < r.key;
    equal_local += key == r.key;
  }
  const std::size_t ties = detail::tie_quota(k - r.less, equal_local, comm);
  return {r.key, less_local + ties, ties};
}

/// Fills `mask` (n entries) from a cut: pruned are keys below the cut key and its `ties` lowest
/// local indices of keys equal to it (the single-layer rule, `dsd::detail::assign_cut_mask`).
template <class Key, mask_storage M, class KeyAt>
void apply_cut(const LocalCut<Key>& cut, std::size_t n, const KeyAt& key_at, M& mask,
               bool anything_pruned) {
  if (!anything_pruned) {
    mask.fill(true);
    return;
  }
  dsd::detail::assign_cut_mask(n, key_at, cut.key, cut.ties, mask);
}

namespace detail {

/// Throws on every rank, with the same message, when any rank's flag is set: collective errors
/// keep ranks from waiting in a collective the failed rank never reaches.
template <communicator Comm>
void agree_or_throw(Comm& comm, bool failed_here, const std::string& what) {
  std::uint64_t v[] = {failed_here ? static_cast<std::uint64_t>(comm.rank())
                                   : std::numeric_limits<std::uint64_t>::max()};
  comm.all_reduce_min(v);
  DSD_REQUIRE(v[0] == std::numeric_limits<std::uint64_t>::max(), invalid_argument, what,
              " (first on rank ", v[0], ")");
}

template <class Policy>
struct nm_traits {
  static constexpr bool is_nm = false;
};
template <std::size_t N, std::size_t M, group_dim Dim>
struct nm_traits<NMCut<N, M, Dim>> {
  static constexpr bool is_nm = true;
  static constexpr std::size_t n = N, m = M;
  static constexpr group_dim dim = Dim;
};

template <class Policy>
constexpr bool supported_policy = std::is_same_v<Policy, KeepmaxCut> ||
                                  std::is_same_v<Policy, RandomCut> || nm_traits<Policy>::is_nm;

}  // namespace detail

namespace detail {

/// Step 1 of a sharded prune: every rank holds the same layer list (names, order), and each
/// rank's local facts hold (no tensor resized after wrapping, no two layers sharing storage).
/// Throws on every rank: the failing rank its own error, the others one naming it.
template <class Policy, layer_collection C, communicator Comm>
void agree_on_layers(C& layers, Comm& comm) {
  std::uint64_t names = 0xcbf29ce484222325ull;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    names = (names ^ dsd::detail::fnv1a(l.name())) * 0x100000001b3ull;
  });
  std::uint64_t lo[] = {names}, hi[] = {names};
  comm.all_reduce_min(lo);
  comm.all_reduce_max(hi);
  DSD_REQUIRE(lo[0] == hi[0], invalid_argument,
              "dist::prune: the ranks hold different layer lists (names or order)");
  collectively(comm, "dist::prune", [&] {
    for_each_layer(layers, [&](auto& l, std::size_t) { (void)l.weights(); });
    dsd::detail::require_disjoint_storage(layers, "dist::prune");
  });
  // Every rank now holds the same names, so checks of names alone throw on all ranks alike.
  if constexpr (requires { Policy::keyed_by_name; })
    dsd::detail::require_unique_names(layers, "dist::prune with " + std::string(Policy::name));
}

/// Where this rank's shards lie in the global tensors.
struct ShardLayout {
  std::vector<std::uint64_t> global;  ///< each tensor's global size
  std::vector<std::uint64_t> offset;  ///< this rank's first global index in it
  std::vector<char> excluded;         ///< the thresholds exclude it: untouched, as in dsd::prune
};

/// Step 2: the global sizes and offsets; a non-finite weight in any rank's shard of a layer to
/// prune is refused on every rank, naming its global index (dsd::prune's check).
template <layer_collection C, class Thresholds, communicator Comm>
ShardLayout shard_layout(C& layers, const Thresholds& thresholds, Comm& comm) {
  using S = collection_scalar_t<C>;
  const std::size_t count = layer_count(layers);
  ShardLayout layout{std::vector<std::uint64_t>(count), std::vector<std::uint64_t>(count),
                     std::vector<char>(count, 0)};
  std::vector<std::uint64_t> bad(count);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    layout.excluded[i] = dsd::detail::excludes(thresholds, l.name()) ? 1 : 0;
    layout.global[i] = l.size();
    layout.offset[i] = comm.exclusive_scan_sum(l.size());
    const std::span<const S> w = l.weights();
    const std::size_t j = layout.excluded[i] ? w.size() : dsd::detail::first_non_finite(w);
    bad[i] = j < w.size() ? layout.offset[i] + j : std::numeric_limits<std::uint64_t>::max();
  });
  comm.all_reduce_sum(layout.global);
  comm.all_reduce_min(bad);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    DSD_REQUIRE(bad[i] == std::numeric_limits<std::uint64_t>::max(), non_finite, "layer \"",
                l.name(), "\" has a non-finite weight at global index ", bad[i],
                "; cannot prune it");
  });
  return layout;
}

/// A cut of the global tensors: the single-process `Cut` (global counts and, for GlobalSparsity,
/// where the one cut key falls in each layer) and this rank's share of each layer's cut.
template <class Key>
struct ShardedCut {
  Cut global;
  std::vector<LocalCut<Key>> local;  ///< empty unless `global.at` is set
};

/// Step 3: the thresholds' cut on the global tensors, by the single-process rules:
/// UniformSparsity and LayerSparsity count each tensor's global size; GlobalSparsity selects one
/// key over every shard of every layer and splits the ties at it by `global_cut` (earlier layers
/// first) and, within a layer, over the ranks by an exclusive scan (lower ranks first).
template <layer_collection C, class Thresholds, communicator Comm>
auto sharded_cut(C& layers, const Thresholds& thresholds, const ShardLayout& layout, Comm& comm) {
  using S = collection_scalar_t<C>;
  using K = dsd::detail::key_type<S>;
  const std::size_t count = layer_count(layers);
  ShardedCut<K> result;
  if constexpr (std::is_same_v<Thresholds, GlobalSparsity>) {
    dsd::detail::require_known_names(layers, thresholds.exclude, "GlobalSparsity exclude");
    std::vector<std::span<const S>> spans;
    std::uint64_t total = 0;
    for_each_layer(layers, [&](auto& l, std::size_t i) {
      spans.push_back(layout.excluded[i] ? l.weights().first(0) : std::span<const S>(l.weights()));
      if (!layout.excluded[i]) total += layout.global[i];
    });
    DSD_REQUIRE(total > 0, empty_tensor, "GlobalSparsity over layers with no prunable weights");
    const std::uint64_t k = prune_count(total, thresholds.sparsity, "<global>");
    result.global.counts.assign(count, 0);
    if (k == 0) return result;
    std::vector<std::size_t> sizes;
    for (const auto& sp : spans) sizes.push_back(sp.size());
    const auto r = sharded_select<K>(
        sizes,
        [&](std::size_t sg, std::size_t i) noexcept { return dsd::detail::magnitude_key(spans[sg][i]); },
        k - 1, comm);
    dsd::detail::CutTally t = dsd::detail::tally_at_key<S>(spans, r.key);
    const std::vector<std::uint64_t> less_local = t.less, equal_local = t.equal;
    comm.all_reduce_sum(t.less);
    comm.all_reduce_sum(t.equal);
    comm.all_reduce_max(t.below);
    result.global = dsd::detail::global_cut(r.key, t.less, t.equal, t.below, k);
    for (std::size_t sg = 0; sg < count; ++sg) {
      const std::size_t quota = tie_quota(result.global.at[sg].ties,
                                          static_cast<std::size_t>(equal_local[sg]), comm);
      result.local.push_back({r.key, static_cast<std::size_t>(less_local[sg]) + quota, quota});
    }
  } else {
    static_assert(dsd::detail::sparsity_by_name<Thresholds>,
                  "dsd: dist::prune takes UniformSparsity, LayerSparsity or GlobalSparsity");
    result.global.counts = dsd::detail::prune_counts_by_name(
        layers, thresholds, "dist::prune thresholds",
        [&](const auto&, std::size_t i) { return static_cast<std::size_t>(layout.global[i]); });
  }
  return result;
}

/// Step 4: this rank's mask of one layer pruned by `count` of its global weights (collective:
/// every rank calls it for every layer, in order), and its global threshold. `precut` is the
/// layer's share of a cut the thresholds found (Keepmax-Cut builds the mask from it).
template <class Policy, class L, class Key, communicator Comm>
auto shard_mask(L& l, std::size_t count, std::uint64_t offset, const Policy& policy,
                const LocalCut<Key>* precut, const LayerCut* at, Comm& comm) {
  using S = typename L::scalar_type;
  typename L::mask_type mask(l.size(), true);
  const auto w = l.weights();
  double threshold = 0.0;
  if constexpr (nm_traits<Policy>::is_nm) {
    constexpr std::size_t m = nm_traits<Policy>::m;
    // Groups never straddle shards, and a shard given rows has rows that hold whole groups.
    // A layer the thresholds leave at 0 stays dense, aligned or not (as in dsd::prune).
    const bool aligned = count == 0 || (offset % m == 0 && w.size() % m == 0 &&
                                        (l.shape().outer == 1 || l.shape().inner % m == 0));
    agree_or_throw(comm, !aligned,
                   "dist::prune: N:M shards of layer \"" + l.name() +
                       "\" must start and end on multiples of M = " + std::to_string(m));
    if (count > 0 && !w.empty())
      threshold = static_cast<double>(
          policy.build_mask(std::span<const S>(w), w.size() / m * (m - nm_traits<Policy>::n),
                            mask, PruneInfo{l.name(), Shape{1, w.size()}}));
    // The layer's threshold is the largest pruned |w| of any shard (non-negative doubles order
    // as their bits).
    std::uint64_t bits[] = {std::bit_cast<std::uint64_t>(threshold)};
    comm.all_reduce_max(bits);
    threshold = std::bit_cast<double>(bits[0]);
  } else if constexpr (std::is_same_v<Policy, RandomCut>) {
    const std::uint64_t stream = RandomCut::stream_for(l.name());
    const auto key_at = [&](std::size_t j) noexcept {
      return dsd::detail::random_cut_key(policy.seed, stream, offset + j);
    };
    using RandomKey = decltype(key_at(std::size_t{0}));
    apply_cut(cut_lowest<RandomKey>(w.size(), key_at, count, comm), w.size(), key_at, mask,
              count > 0);
  } else {
    const auto key_at = [&](std::size_t j) noexcept { return dsd::detail::magnitude_key(w[j]); };
    if (precut != nullptr) {  // GlobalSparsity already cut this layer
      apply_cut(*precut, w.size(), key_at, mask, count > 0);
      if (count > 0)
        threshold = static_cast<double>(
            dsd::detail::magnitude_from_key<S>(static_cast<Key>(at->largest)));
    } else {
      const LocalCut<Key> cut = cut_lowest<Key>(w.size(), key_at, count, comm);
      apply_cut(cut, w.size(), key_at, mask, count > 0);
      if (count > 0) threshold = static_cast<double>(dsd::detail::magnitude_from_key<S>(cut.key));
    }
  }
  return std::pair{std::move(mask), threshold};
}

}  // namespace detail

/// Prunes sharded layers: on each rank `layers` are its slices of the same tensors, in the same
/// order, with the same names; the slices of a tensor are contiguous in rank order. The masks,
/// thresholds and counts equal the single-process `prune(layers, thresholds, policy)` on the
/// concatenated tensors: Keepmax-Cut and Random-Cut (keyed by the global index, so independent of
/// the sharding) through a sharded select, N:M locally on shards aligned to M. `thresholds` is
/// `UniformSparsity`, `LayerSparsity` (their count rule on each tensor's global size) or
/// `GlobalSparsity`. Returns each layer's global stats. The single-process steps over a
/// communicator: agree on the layers, lay out the shards, cut, build every mask, commit.
/// All or nothing: an error (on any rank: NaN weights, misaligned N:M shards, differing layer
/// lists) is thrown on every rank and leaves every mask as it was.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds, communicator Comm>
std::vector<LayerStats> prune(C&& layers, const Thresholds& thresholds, Comm& comm,
                              const Policy& policy = {}) {
  static_assert(detail::supported_policy<Policy>,
                "dsd: dist::prune supports KeepmaxCut, RandomCut and NMCut<N, M>");
  if constexpr (detail::nm_traits<Policy>::is_nm)
    static_assert(detail::nm_traits<Policy>::dim == group_dim::inner,
                  "dsd: dist::prune shards N:M groups along Shape::inner only");
  detail::agree_on_layers<Policy>(layers, comm);
  const detail::ShardLayout layout = detail::shard_layout(layers, thresholds, comm);
  const auto cut = detail::sharded_cut(layers, thresholds, layout, comm);
  std::vector<std::size_t> counts = cut.global.counts;
  dsd::detail::apply_fixed_sparsity<Policy>(
      layers, counts, [&](const auto&, std::size_t i) { return static_cast<std::size_t>(layout.global[i]); });

  // Excluded layers keep their masks; their global kept counts for the stats.
  std::vector<std::uint64_t> excluded_kept(counts.size(), 0);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    if (layout.excluded[i]) excluded_kept[i] = l.mask().count();
  });
  if (std::find(layout.excluded.begin(), layout.excluded.end(), 1) != layout.excluded.end())
    comm.all_reduce_sum(excluded_kept);

  // Build every mask first (collectives in the same order on every rank), then install them.
  std::vector<LayerStats> stats;
  std::vector<std::function<void()>> commits;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    const auto g = static_cast<std::size_t>(layout.global[i]);
    if (layout.excluded[i]) {
      const auto kept = static_cast<std::size_t>(excluded_kept[i]);
      stats.push_back({l.name(), g, kept,
                       static_cast<double>(g - kept) / static_cast<double>(g), l.threshold()});
      return;
    }
    const bool precut = std::is_same_v<Policy, KeepmaxCut> && !cut.local.empty();
    // Not a structured binding: Clang 14 cannot capture one.
    auto built =
        detail::shard_mask(l, counts[i], layout.offset[i], policy,
                           precut ? &cut.local[i] : nullptr, precut ? &cut.global.at[i] : nullptr, comm);
    const double threshold = built.second;
    stats.push_back({l.name(), g, g - counts[i],
                     static_cast<double>(counts[i]) / static_cast<double>(g), threshold});
    commits.push_back([&l, m = std::move(built.first), threshold]() mutable {
      l.set_mask(std::move(m), threshold);
    });
  });
  for (auto& commit : commits) commit();
  return stats;
}

}  // namespace dsd::dist
