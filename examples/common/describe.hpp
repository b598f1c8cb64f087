#pragma once
// The examples' parameter listing: one line per wrapped parameter (name, shape, pruned or not).

#include <cstddef>
#include <span>
#include <sstream>
#include <string>

namespace examples {

/// `params` holds the prunable parameters first (`prunable` of them), then the others.
template <class Param>
std::string describe_parameters(std::span<const Param> params, std::size_t prunable, const char* where = "") {
  std::ostringstream s;
  std::size_t total = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto sh = params[i].shape();
    s << "  " << params[i].name() << " [" << sh.outer << " x " << sh.inner << "]"
      << (i < prunable ? "" : " (not pruned)") << "\n";
    total += params[i].size();
  }
  s << "  " << total << " parameters" << where << "\n";
  return s.str();
}

}  // namespace examples
