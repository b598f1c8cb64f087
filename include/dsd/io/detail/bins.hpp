#pragma once
/// \file
/// The histogram's bins, one definition for the host pass, the CUDA kernel and
/// `WeightHistogram::edge`: n equal bins over [-r, r] whose inner edges are (i - n/2) · (2r/n)
/// (a subtraction then one product: no compiler can fuse it differently on the host and the
/// device), the outer edges -r and r themselves. A weight goes to the bin whose edges hold it,
/// the last bin closed at r. Ranges are kept within [min_range, max_range], where none of this
/// overflows.
#include <cstdint>

#include "dsd/config.hpp"

namespace dsd::io::detail {

inline constexpr double min_range = 1e-300, max_range = 1e300;

/// Inner edge `i` (0 < i < n) of n bins of width `width` = 2r/n.
DSD_HOST_DEVICE double inner_edge(double i, double half_n, double width) { return (i - half_n) * width; }

/// The bin of `x`, which lies within [-r, r]: a first guess from x/r (`inv_r` = 1/r), moved by
/// one where `x` falls outside that bin's edges; `last` is n - 1 as a double (computed by the
/// caller: GCC 12 does not vectorise the loop when it can see it derived from an integer here).
/// Branch-free, so that the host's loop vectorises.
DSD_HOST_DEVICE std::uint32_t bin_of(double x, double inv_r, double half_n, double width, double last) {
  double t = (x * inv_r + 1.0) * half_n;
  t = t >= 0.0 ? t : 0.0;  // also NaN (the caller gives such a weight another slot)
  t = t <= last ? t : last;
  const auto b = static_cast<std::int32_t>(t);
  const auto bd = static_cast<double>(b);
  // Masks of all ones (-1) where the guess moves down or up: integer arithmetic, which the
  // compiler vectorises where selects between doubles it does not.
  const std::int32_t down = -static_cast<std::int32_t>(x < inner_edge(bd, half_n, width)) &
                            -static_cast<std::int32_t>(bd > 0.0);
  const std::int32_t up = -static_cast<std::int32_t>(x >= inner_edge(bd + 1.0, half_n, width)) &
                          -static_cast<std::int32_t>(bd < last);
  return static_cast<std::uint32_t>(b + down - up);
}

}  // namespace dsd::io::detail
