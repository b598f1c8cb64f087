#pragma once
/// \file
/// Collections of masked parameters: a tuple of references to layers of any types (from
/// `dsd::layers(a, b, c)`), or any range of one `Masked` type (e.g. `std::vector<Masked<...>>`).

#include <cstddef>
#include <functional>
#include <ranges>
#include <tuple>
#include <type_traits>

#include "dsd/masked.hpp"

namespace dsd {

/// Groups wrapped parameters of possibly different types, by reference, for the phase loop,
/// global thresholds and sensitivity analysis.
template <masked_parameter... L>
[[nodiscard]] constexpr std::tuple<L&...> layers(L&... l) noexcept {
  return std::tuple<L&...>(l...);
}

namespace detail {
template <class C>
inline constexpr bool is_tuple_v = false;
template <class... L>
inline constexpr bool is_tuple_v<std::tuple<L...>> = true;
}  // namespace detail

/// A set of layers: a tuple of `Masked` references or a range of `Masked` values.
template <class C>
concept layer_collection = detail::is_tuple_v<std::remove_cvref_t<C>> ||
    (std::ranges::range<C>&& masked_parameter<std::ranges::range_reference_t<C>>);

/// Calls `f(layer, index)` for every layer of the collection, in order.
template <layer_collection C, class F>
void for_each_layer(C&& layers, F&& f) {
  if constexpr (detail::is_tuple_v<std::remove_cvref_t<C>>) {
    std::size_t i = 0;
    std::apply([&](auto&&... l) { (f(l, i++), ...); }, layers);
  } else {
    std::size_t i = 0;
    for (auto&& l : layers) f(l, i++);
  }
}

/// Number of layers in a collection.
template <layer_collection C>
[[nodiscard]] std::size_t layer_count(const C& layers) {
  if constexpr (detail::is_tuple_v<std::remove_cvref_t<C>>)
    return std::tuple_size_v<std::remove_cvref_t<C>>;
  else
    return static_cast<std::size_t>(std::ranges::distance(layers));
}

/// Common scalar type of a collection's layers (double if any layer is double).
template <class C>
struct collection_scalar;
template <class... L>
struct collection_scalar<std::tuple<L...>> {
  using type = std::common_type_t<typename std::remove_cvref_t<L>::scalar_type...>;
};
template <class C>
requires std::ranges::range<C>
struct collection_scalar<C> {
  using type = typename std::remove_cvref_t<std::ranges::range_reference_t<C>>::scalar_type;
};
template <class C>
using collection_scalar_t = typename collection_scalar<std::remove_cvref_t<C>>::type;

}  // namespace dsd
