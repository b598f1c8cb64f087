#pragma once
/// \file
/// Per-parameter optimizer state (momentum, Adam moments, step count).

#include <cstdint>
#include <vector>

namespace dsd {

/// Buffers an optimizer keeps for one parameter. They live inside the `Masked` parameter, so
/// pruning, enforcing and re-densing zero them at exactly the positions they zero the weights:
/// state can never resurrect a pruned weight, and copying a parameter copies its state.
///
/// | optimizer | `first` | `second` | `step` |
/// |---|---|---|---|
/// | `Sgd` | empty | empty | not used |
/// | `MomentumSgd`, `Nesterov` | velocity v (v <- mu v + g + wd w) | empty | updates taken |
/// | `Adam`, `AdamW` | first moment m | second moment v | updates taken (bias correction) |
/// | a user's optimizer | its own | its own | its own |
///
/// A buffer is allocated (zeroed, the parameter's size) by the first step that needs it; a
/// checkpoint saves whichever are allocated.
template <class S>
struct OptimizerState {
  std::vector<S> first;   ///< the first per-weight buffer (see the table)
  std::vector<S> second;  ///< the second per-weight buffer (see the table)
  std::int64_t step = 0;  ///< updates taken, where the optimizer counts them

  friend bool operator==(const OptimizerState&, const OptimizerState&) = default;
};

}  // namespace dsd
