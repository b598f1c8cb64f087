#pragma once
/// \file
/// The three phases of DSD and their names.

#include <string_view>

namespace dsd {

/// The three phases of DSD.
enum class Phase { dense, sparse, redense };

/// Name of a phase as printed in progress lines and reports.
constexpr std::string_view to_string(Phase p) noexcept {
  switch (p) {
    case Phase::dense:
      return "dense";
    case Phase::sparse:
      return "sparse";
    case Phase::redense:
      return "re-dense";
  }
  return "?";
}

}  // namespace dsd
