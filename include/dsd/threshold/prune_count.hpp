#pragma once
/// \file
/// How many weights a sparsity prunes: the unit every threshold policy returns.

#include <cmath>
#include <cstddef>
#include <string_view>

#include "dsd/error.hpp"

namespace dsd {

/// Number of weights pruned at `sparsity` in a tensor of `n`: round(sparsity * n), halves away
/// from zero (so a tiny layer may lose all its weights at a high sparsity). Throws unless 0 <=
/// sparsity < 1.
[[nodiscard]] inline std::size_t prune_count(std::size_t n, double sparsity,
                                             std::string_view layer = {}) {
  DSD_REQUIRE(sparsity >= 0.0 && sparsity < 1.0, invalid_argument, "sparsity ", sparsity,
              layer.empty() ? "" : " for layer \"", layer, layer.empty() ? "" : "\"",
              " is outside [0, 1)");
  return static_cast<std::size_t>(std::llround(sparsity * static_cast<double>(n)));
}

}  // namespace dsd
