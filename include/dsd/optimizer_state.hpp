#pragma once
/// \file
/// Per-parameter optimizer state (momentum, Adam moments, step count).

#include <cstdint>
#include <vector>

namespace dsd {

/// Buffers an optimizer keeps for one parameter. They live inside the `Masked` parameter, so
/// pruning, enforcing and re-densing zero them at exactly the positions they zero the weights:
/// state can never resurrect a pruned weight, and copying a parameter copies its state.
template <class S>
struct OptimizerState {
  std::vector<S> first;   ///< momentum buffer, or Adam's first moment
  std::vector<S> second;  ///< Adam's second moment
  std::int64_t step = 0;  ///< number of updates taken (Adam's bias correction)

  friend bool operator==(const OptimizerState&, const OptimizerState&) = default;
};

}  // namespace dsd
