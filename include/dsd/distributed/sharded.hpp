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
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "dsd/detail/counter_rng.hpp"
#include "dsd/detail/finite.hpp"
#include "dsd/detail/parallel.hpp"
#include "dsd/detail/radix_select.hpp"
#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/masked.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/nm_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/pruning/random_cut.hpp"
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
inline constexpr std::size_t shard_bins = std::size_t{1} << shard_digit_bits;

/// Adds to `hist` the digit at `shift` of this rank's keys `key_at(s, i)` matching `prefix`
/// under `prefix_mask`.
template <class Key, class KeyAt>
void local_histogram(std::span<const std::size_t> sizes, const KeyAt& key_at, Key prefix,
                     Key prefix_mask, unsigned shift, std::vector<std::uint64_t>& hist) {
  std::mutex merge;
  for (std::size_t s = 0; s < sizes.size(); ++s)
    dsd::detail::parallel_chunks(sizes[s], std::size_t{1} << 16, [&](std::size_t begin, std::size_t end) {
      std::vector<std::uint64_t> h(shard_bins, 0);
      for (std::size_t i = begin; i < end; ++i) {
        const Key k = key_at(s, i);
        if ((k & prefix_mask) == prefix) ++h[(k >> shift) & (shard_bins - 1)];
      }
      const std::lock_guard<std::mutex> lock(merge);
      for (std::size_t b = 0; b < shard_bins; ++b) hist[b] += h[b];
    });
}

/// The key of global 0-based rank `rank` over every rank's segments, and how many keys (all
/// ranks) are below it: one all-reduce of 256 counters per 8 key bits.
template <class Key, communicator Comm, class KeyAt>
dsd::detail::SelectResult<Key> sharded_select(std::span<const std::size_t> sizes,
                                              const KeyAt& key_at, std::uint64_t rank, Comm& comm) {
  static_assert(std::is_unsigned_v<Key>);
  constexpr unsigned key_bits = sizeof(Key) * 8;
  std::vector<std::uint64_t> hist(shard_bins);
  Key prefix = 0, prefix_mask = 0;
  std::uint64_t less = 0;
  for (unsigned shift = key_bits - shard_digit_bits;; shift -= shard_digit_bits) {
    std::fill(hist.begin(), hist.end(), 0);
    local_histogram(sizes, key_at, prefix, prefix_mask, shift, hist);
    comm.all_reduce_sum(hist);
    std::size_t b = 0;
    for (; b + 1 < shard_bins && rank >= hist[b]; ++b) rank -= hist[b], less += hist[b];
    prefix |= static_cast<Key>(static_cast<Key>(b) << shift);
    prefix_mask |= static_cast<Key>(static_cast<Key>(shard_bins - 1) << shift);
    if (shift == 0) break;
  }
  return {prefix, static_cast<std::size_t>(less)};
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
      sizes, [&](std::size_t, std::size_t i) { return key_at(i); }, k - 1, comm);
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

/// Prunes sharded layers: on each rank `layers` are its slices of the same tensors, in the same
/// order, with the same names; the slices of a tensor are contiguous in rank order. The masks,
/// thresholds and counts equal the single-process `prune(layers, thresholds, policy)` on the
/// concatenated tensors: Keepmax-Cut and Random-Cut (keyed by the global index, so independent of
/// the sharding) through a sharded select, N:M locally on shards aligned to M. `thresholds` is
/// `UniformSparsity`, `LayerSparsity` (their count rule on each tensor's global size) or
/// `GlobalSparsity`. Returns each layer's global stats.
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
  using S = collection_scalar_t<C>;
  using K = dsd::detail::key_type<S>;
  const std::size_t count = layer_count(layers);

  // Same layer list on every rank.
  std::uint64_t names = 0xcbf29ce484222325ull;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    names = (names ^ dsd::detail::fnv1a(l.name())) * 0x100000001b3ull;
  });
  std::uint64_t lo[] = {names}, hi[] = {names};
  comm.all_reduce_min(lo);
  comm.all_reduce_max(hi);
  DSD_REQUIRE(lo[0] == hi[0], invalid_argument,
              "dist::prune: the ranks hold different layer lists (names or order)");
  // Local facts (a tensor resized after wrapping, two layers sharing storage), agreed on before
  // any rank throws: the failing rank's own error, and on the others one naming it.
  detail::collectively(comm, "dist::prune", [&] {
    for_each_layer(layers, [&](auto& l, std::size_t) { (void)l.weights(); });
    dsd::detail::require_disjoint_storage(layers, "dist::prune");
  });
  // From here every rank holds the same names, so checks of names alone throw on all ranks alike.
  if constexpr (requires { Policy::keyed_by_name; })
    dsd::detail::require_unique_names(layers, "dist::prune with " + std::string(Policy::name));
  std::vector<char> excluded(count, 0);  // excluded means untouched, as in dsd::prune
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    excluded[i] = dsd::detail::excludes(thresholds, l.name()) ? 1 : 0;
  });

  // Global sizes and this rank's offsets; the first non-finite weight of each layer.
  std::vector<std::uint64_t> global(count), offset(count), bad(count);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    global[i] = l.size();
    offset[i] = comm.exclusive_scan_sum(l.size());
    const std::span<const S> w = l.weights();
    const std::size_t j = excluded[i] ? w.size() : dsd::detail::first_non_finite(w);  // prune()'s check
    bad[i] = j < w.size() ? offset[i] + j : std::numeric_limits<std::uint64_t>::max();
  });
  comm.all_reduce_sum(global);
  comm.all_reduce_min(bad);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    DSD_REQUIRE(bad[i] == std::numeric_limits<std::uint64_t>::max(), non_finite, "layer \"",
                l.name(), "\" has a non-finite weight at global index ", bad[i],
                "; cannot prune it");
  });

  // How many to prune in each layer: the single-process rules on the global sizes.
  std::vector<std::size_t> counts(count, 0);
  std::vector<std::optional<LocalCut<K>>> precut(count);  // GlobalSparsity's cut of each layer
  std::vector<double> layer_threshold(count, 0.0);
  if constexpr (std::is_same_v<Thresholds, GlobalSparsity>) {
    dsd::detail::require_known_names(layers, thresholds.exclude, "GlobalSparsity exclude");
    std::vector<std::span<const S>> spans;
    std::uint64_t total = 0;
    for_each_layer(layers, [&](auto& l, std::size_t i) {
      spans.push_back(excluded[i] ? l.weights().first(0) : std::span<const S>(l.weights()));
      if (!excluded[i]) total += global[i];
    });
    DSD_REQUIRE(total > 0, empty_tensor, "GlobalSparsity over layers with no prunable weights");
    const std::uint64_t k = prune_count(total, thresholds.sparsity, "<global>");
    std::vector<std::size_t> sizes;
    for (const auto& sp : spans) sizes.push_back(sp.size());
    // The global cut key, then the single-process rule: ties at the key go to earlier layers
    // first. Each layer's own cut follows from it without another select: its keys below the
    // key, and its share of the ties split over the ranks by an exclusive scan.
    if (k > 0) {
      const auto r = detail::sharded_select<K>(
          sizes, [&](std::size_t sg, std::size_t i) { return dsd::detail::magnitude_key(spans[sg][i]); },
          k - 1, comm);
      std::vector<std::uint64_t> less(count, 0), equal(count, 0), below(count, 0);
      std::vector<std::size_t> equal_local(count, 0);
      for (std::size_t sg = 0; sg < count; ++sg)
        for (const S w : spans[sg]) {
          const K key = dsd::detail::magnitude_key(w);
          less[sg] += key < r.key;
          equal[sg] += key == r.key;
          if (key < r.key && key > below[sg]) below[sg] = key;  // the largest key under the cut
        }
      for (std::size_t sg = 0; sg < count; ++sg) equal_local[sg] = static_cast<std::size_t>(equal[sg]);
      const std::vector<std::uint64_t> less_local = less;
      comm.all_reduce_sum(less);
      comm.all_reduce_sum(equal);
      comm.all_reduce_max(below);
      const std::vector<std::uint64_t> layer_ties = dsd::detail::global_cut_ties(less, equal, k);
      for (std::size_t sg = 0; sg < count; ++sg) {
        const std::uint64_t ties = layer_ties[sg];
        counts[sg] = static_cast<std::size_t>(less[sg] + ties);
        const std::size_t quota = detail::tie_quota(ties, equal_local[sg], comm);
        // The layer's threshold: the cut key if it prunes ties, else its largest key below.
        const K key = ties > 0 ? r.key : static_cast<K>(below[sg]);
        precut[sg] = LocalCut<K>{r.key, static_cast<std::size_t>(less_local[sg]) + quota, quota};
        layer_threshold[sg] = counts[sg] > 0 ? static_cast<double>(dsd::detail::magnitude_from_key<S>(key)) : 0.0;
      }
    }
  } else {
    static_assert(dsd::detail::sparsity_by_name<Thresholds>,
                  "dsd: dist::prune takes UniformSparsity, LayerSparsity or GlobalSparsity");
    counts = dsd::detail::prune_counts_by_name(
        layers, thresholds, "dist::prune thresholds",
        [&](const auto&, std::size_t i) { return static_cast<std::size_t>(global[i]); });
  }
  if constexpr (requires { static_cast<double>(Policy::sparsity); })
    for_each_layer(layers, [&](auto& l, std::size_t i) {
      if (counts[i] > 0)
        counts[i] = prune_count(static_cast<std::size_t>(global[i]), Policy::sparsity, l.name());
    });

  // Excluded layers keep their masks; their global kept counts for the stats.
  std::vector<std::uint64_t> excluded_kept(count, 0);
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    if (excluded[i]) excluded_kept[i] = l.mask().count();
  });
  if (std::find(excluded.begin(), excluded.end(), 1) != excluded.end())
    comm.all_reduce_sum(excluded_kept);

  // Build every mask first (collectives in the same order on every rank), then install them.
  std::vector<LayerStats> stats;
  std::vector<std::function<void()>> commits;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    if (excluded[i]) {
      const auto g = static_cast<std::size_t>(global[i]);
      const auto kept = static_cast<std::size_t>(excluded_kept[i]);
      stats.push_back({l.name(), g, kept,
                       static_cast<double>(g - kept) / static_cast<double>(g), l.threshold()});
      return;
    }
    using L = std::remove_cvref_t<decltype(l)>;
    typename L::mask_type mask(l.size(), true);
    const auto w = l.weights();
    double threshold = 0.0;
    if constexpr (detail::nm_traits<Policy>::is_nm) {
      constexpr std::size_t m = detail::nm_traits<Policy>::m;
      // Groups never straddle shards, and a shard given rows has rows that hold whole groups.
      // A layer the thresholds leave at 0 stays dense, aligned or not (as in dsd::prune).
      const bool aligned = counts[i] == 0 || (offset[i] % m == 0 && w.size() % m == 0 &&
                                              (l.shape().outer == 1 || l.shape().inner % m == 0));
      detail::agree_or_throw(comm, !aligned,
                             "dist::prune: N:M shards of layer \"" + l.name() +
                                 "\" must start and end on multiples of M = " + std::to_string(m));
      if (counts[i] > 0 && !w.empty())
        threshold = static_cast<double>(policy.build_mask(
            std::span<const S>(w), w.size() / m * (m - detail::nm_traits<Policy>::n), mask,
            PruneInfo{l.name(), Shape{1, w.size()}}));
      // The layer's threshold is the largest pruned |w| of any shard (non-negative doubles order
      // as their bits).
      std::uint64_t bits[] = {std::bit_cast<std::uint64_t>(threshold)};
      comm.all_reduce_max(bits);
      threshold = std::bit_cast<double>(bits[0]);
    } else {
      std::uint64_t stream = 0;
      if constexpr (std::is_same_v<Policy, RandomCut>) stream = RandomCut::stream_for(l.name());
      const auto key_at = [&](std::size_t j) noexcept {
        if constexpr (std::is_same_v<Policy, RandomCut>)
          return dsd::detail::random_cut_key(policy.seed, stream, offset[i] + j);
        else
          return dsd::detail::magnitude_key(w[j]);
      };
      using Key = decltype(key_at(std::size_t{0}));
      bool cut_already = false;
      if constexpr (std::is_same_v<Policy, KeepmaxCut>) {
        if (precut[i]) {  // GlobalSparsity already cut this layer
          apply_cut(*precut[i], w.size(), key_at, mask, counts[i] > 0);
          threshold = layer_threshold[i];
          cut_already = true;
        }
      }
      if (!cut_already) {
        const LocalCut<Key> cut = cut_lowest<Key>(w.size(), key_at, counts[i], comm);
        apply_cut(cut, w.size(), key_at, mask, counts[i] > 0);
        if constexpr (!std::is_same_v<Policy, RandomCut>)
          if (counts[i] > 0)
            threshold = static_cast<double>(dsd::detail::magnitude_from_key<S>(cut.key));
      }
    }
    const auto g = static_cast<std::size_t>(global[i]);
    stats.push_back({l.name(), g, g - counts[i],
                     static_cast<double>(counts[i]) / static_cast<double>(g), threshold});
    commits.push_back([&l, m = std::move(mask), threshold]() mutable {
      l.set_mask(std::move(m), threshold);
    });
  });
  for (auto& commit : commits) commit();
  return stats;
}

}  // namespace dsd::dist
