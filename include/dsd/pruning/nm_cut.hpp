#pragma once
/// \file
/// N:M structured pruning (e.g. 2:4, the pattern sparse tensor cores accelerate).

#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "dsd/error.hpp"
#include "dsd/pruning/policy.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

/// The storage dimension N:M groups run along. Groups belong on a layer's reduction dimension
/// (the inputs each output sums over), because that is where sparse tensor cores skip work:
/// `inner` for row-major `[out, in]` weights (PyTorch's Linear, dsd's examples), `outer` for the
/// same matrix stored column-major (an Eigen `Matrix<out, in>`, whose storage runs are columns).
enum class group_dim {
  inner,  ///< M consecutive elements of a storage run (`Shape::inner` must be a multiple of M)
  outer,  ///< M consecutive runs at the same position (`Shape::outer` must be a multiple of M)
};

/// Keeps the N largest |w| of every group of M weights along `Dim` of the storage-order shape.
/// The sparsity is therefore fixed at (M-N)/M, and collection prunes (`UniformSparsity`,
/// `GlobalSparsity`, ...) use it for every layer they prune. Ties within a group prune the lower
/// index first.
template <std::size_t N, std::size_t M, group_dim Dim = group_dim::inner>
struct NMCut {
  static_assert(M > 0 && N <= M, "dsd: NMCut<N, M> needs 0 <= N <= M and M > 0");
  static constexpr std::string_view name = "nm-cut";
  /// The only sparsity this policy produces.
  static constexpr double sparsity = static_cast<double>(M - N) / static_cast<double>(M);

  template <floating_scalar S, mask_storage Mask>
  S build_mask(std::span<const S> w, std::size_t prune, Mask& mask,
               const PruneInfo& info = {}) const {
    const Shape shape = info.shape.size() == w.size() ? info.shape : Shape{1, w.size()};
    constexpr bool along_inner = Dim == group_dim::inner;
    const std::size_t length = along_inner ? shape.inner : shape.outer;
    DSD_REQUIRE(length % M == 0, invalid_argument, "NMCut<", N, ",", M, "> groups along ",
                along_inner ? "Shape::inner" : "Shape::outer", ", which must be a multiple of ", M,
                "; layer \"", info.name, "\" has ", shape.outer, " x ", shape.inner);
    const std::size_t groups = w.size() / M;
    DSD_REQUIRE(prune == groups * (M - N), invalid_argument, "NMCut<", N, ",", M,
                "> prunes exactly ", M - N, " of every ", M, " weights (sparsity ", sparsity,
                "); layer \"", info.name, "\" was asked to prune ", prune, " of ", w.size());
    const std::size_t stride = along_inner ? 1 : shape.inner;
    mask.assign([&](std::size_t i) noexcept {
      const std::size_t member = along_inner ? i % M : (i / shape.inner) % M;
      return kept_in_group(w, i - member * stride, stride, member);
    });
    S threshold = 0;  // the largest pruned magnitude
    for (std::size_t i = 0; i < w.size(); ++i)
      if (!mask.test(i) && std::abs(w[i]) > threshold) threshold = std::abs(w[i]);
    return threshold;
  }

 private:
  // Member `a` of the group starting at `first` (members `stride` apart) is kept when fewer than
  // N members beat it, where a member beats it with a larger magnitude, or an equal one at a
  // higher index.
  template <class S>
  static bool kept_in_group(std::span<const S> w, std::size_t first, std::size_t stride,
                            std::size_t a) noexcept {
    std::size_t beaten_by = 0;
    const S ma = std::abs(w[first + a * stride]);
    for (std::size_t b = 0; b < M; ++b) {
      const S mb = std::abs(w[first + b * stride]);
      beaten_by += (mb > ma || (mb == ma && b > a)) ? 1 : 0;
    }
    return beaten_by < N;
  }
};

}  // namespace dsd
