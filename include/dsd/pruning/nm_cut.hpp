#pragma once
/// \file
/// N:M structured pruning (e.g. 2:4, the pattern sparse tensor cores accelerate).

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "dsd/error.hpp"
#include "dsd/pruning/policy.hpp"

namespace dsd {

/// Keeps the N largest |w| of every group of M consecutive weights along the storage-order rows
/// (`Shape::inner`, which must be a multiple of M). The sparsity is therefore fixed at (M-N)/M;
/// ties within a group prune the lower index first.
template <std::size_t N, std::size_t M>
struct NMCut {
  static_assert(M > 0 && N <= M, "dsd: NMCut<N, M> needs 0 <= N <= M and M > 0");
  static constexpr std::string_view name = "nm-cut";
  /// The only sparsity this policy produces.
  static constexpr double sparsity = static_cast<double>(M - N) / static_cast<double>(M);

  template <floating_scalar S, mask_storage Mask>
  S build_mask(std::span<const S> w, std::size_t prune, Mask& mask,
               const PruneInfo& info = {}) const {
    const std::size_t inner = info.shape.size() == w.size() ? info.shape.inner : w.size();
    DSD_REQUIRE(inner % M == 0, invalid_argument, "NMCut<", N, ",", M,
                "> needs rows whose length is a multiple of ", M, "; layer \"", info.name,
                "\" has rows of ", inner);
    const std::size_t groups = w.size() / M;
    DSD_REQUIRE(prune == groups * (M - N), invalid_argument, "NMCut<", N, ",", M,
                "> prunes exactly ", M - N, " of every ", M, " weights (sparsity ", sparsity,
                "); layer \"", info.name, "\" was asked to prune ", prune, " of ", w.size());
    mask.assign([&](std::size_t i) { return kept_in_group(w.subspan(i - i % M, M), i % M); });
    S threshold = 0;  // the largest pruned magnitude
    for (std::size_t i = 0; i < w.size(); ++i)
      if (!mask.test(i) && std::abs(w[i]) > threshold) threshold = std::abs(w[i]);
    return threshold;
  }

 private:
  // Member `a` of a group is kept when fewer than N members beat it, where a member beats it with
  // a larger magnitude, or an equal one at a higher index.
  template <class S>
  static bool kept_in_group(std::span<const S> g, std::size_t a) {
    std::size_t beaten_by = 0;
    const S ma = std::abs(g[a]);
    for (std::size_t b = 0; b < M; ++b) {
      const S mb = std::abs(g[b]);
      beaten_by += (mb > ma || (mb == ma && b > a)) ? 1 : 0;
    }
    return beaten_by < N;
  }
};

}  // namespace dsd
