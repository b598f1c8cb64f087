#pragma once
/// \file
/// N:M structured pruning (e.g. 2:4, the pattern sparse tensor cores accelerate).

#include <array>
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
    S threshold = 0;
    std::array<bool, M> keep{};
    mask.assign([&](std::size_t i) {
      const std::size_t j = i % M;
      if (j == 0) threshold = keep_group(w.subspan(i, M), keep, threshold);
      return keep[j];
    });
    return threshold;
  }

 private:
  // Rank each weight in its group: it is kept when at most N-1 group members beat it, where a
  // member beats it with a larger magnitude, or an equal one at a higher index.
  template <class S>
  static S keep_group(std::span<const S> g, std::array<bool, M>& keep, S threshold) {
    for (std::size_t a = 0; a < M; ++a) {
      std::size_t beaten_by = 0;
      const S ma = std::abs(g[a]);
      for (std::size_t b = 0; b < M; ++b) {
        const S mb = std::abs(g[b]);
        beaten_by += (mb > ma || (mb == ma && b > a)) ? 1 : 0;
      }
      keep[a] = beaten_by < N;
      if (!keep[a] && ma > threshold) threshold = ma;
    }
    return threshold;
  }
};

}  // namespace dsd
