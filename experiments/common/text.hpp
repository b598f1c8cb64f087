#pragma once
// Text helpers of the experiment trainers: printf-style formatting into a std::string, and the parameter
// listing (one line per wrapped parameter: name, shape, pruned or not).

#include <cstddef>
#include <cstdio>
#include <span>
#include <sstream>
#include <string>

namespace experiments {

/// printf-style formatting into a std::string.
template <class... Args>
std::string format(const char* fmt, Args... args) {
  const int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string out(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
  if (n > 0) std::snprintf(out.data(), out.size() + 1, fmt, args...);
  return out;
}

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

}  // namespace experiments
