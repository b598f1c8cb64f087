#pragma once
/// \file
/// The D -> S -> D loop over sharded layers: `dsd::run` with the prune of `dist::prune`, so each
/// tensor is pruned as one over its shards (a shard pruned alone keeps its own share, not the
/// tensor's), and the report's counts summed over the job.

#include <cstdint>
#include <vector>

#include "dsd/distributed/communicator.hpp"
#include "dsd/distributed/sharded.hpp"
#include "dsd/layers.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/schedule/phase_loop.hpp"

namespace dsd::dist {

/// Each layer's statistics over the whole tensor: sizes and kept counts summed over the ranks
/// (every rank records the tensor's threshold). Collective: one all-reduce.
template <layer_collection C, communicator Comm>
[[nodiscard]] std::vector<LayerStats> layer_stats(C&& layers, Comm& comm) {
  std::vector<LayerStats> stats = dsd::layer_stats(layers);
  std::vector<std::uint64_t> counts;
  for (const auto& s : stats) counts.push_back(s.size), counts.push_back(s.kept);
  comm.all_reduce_sum(counts);
  for (std::size_t i = 0; i < stats.size(); ++i) {
    stats[i].size = static_cast<std::size_t>(counts[2 * i]);
    stats[i].kept = static_cast<std::size_t>(counts[2 * i + 1]);
    stats[i].sparsity = stats[i].size == 0 ? 0.0
                                           : 1.0 - static_cast<double>(stats[i].kept) /
                                                       static_cast<double>(stats[i].size);
  }
  return stats;
}

/// `dsd::run` over sharded layers (see `dist::prune` for the layout): every prune is the
/// collective `dist::prune(layers, thresholds, comm, policy)`, the phase reports count whole
/// tensors, and the epoch-end enforcement's counts are summed over the ranks. Every rank calls it
/// with the same schedule, thresholds and start; `train_epoch` and `evaluate` are the user's (and
/// do their own collectives). An error in a prune is thrown on every rank.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds, communicator Comm>
Report run(C&& layers, const Plan& plan, const Thresholds& thresholds, const Callbacks& callbacks,
           Comm& comm, const Policy& policy = {}, Position start = {}) {
  return dsd::detail::run_loop(
      layers, plan, thresholds, callbacks, start,
      [&](const auto& t) { dist::prune(layers, t, comm, policy); },
      [&] { return dist::layer_stats(layers, comm); },
      [&](bool enforce) {  // a resized tensor on one rank fails on every rank, none waits
        dsd::detail::WeightCensus c;
        detail::collectively(comm, "dist::run", [&] { c = dsd::detail::weight_census(layers, enforce); });
        std::uint64_t v[] = {c.weights, c.zeros, c.unmasked, c.measured ? 0u : 1u};
        comm.all_reduce_sum(v);
        return dsd::detail::WeightCensus{v[0], v[1], v[2], v[3] == 0};
      });
}

/// `dist::run` of `schedule.plan()`.
template <class Policy = KeepmaxCut, layer_collection C, class Thresholds, communicator Comm>
Report run(C&& layers, const Schedule& schedule, const Thresholds& thresholds,
           const Callbacks& callbacks, Comm& comm, const Policy& policy = {}, Position start = {}) {
  return dist::run(layers, schedule.plan(), thresholds, callbacks, comm, policy, start);
}

}  // namespace dsd::dist
