#pragma once
/// \file
/// Collections of masked parameters: a tuple of references to layers of any types (from
/// `dsd::layers(a, b, c)`), or any range of one `Masked` type (e.g. `std::vector<Masked<...>>`).

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/masked.hpp"

namespace dsd {

/// Where a wrapped parameter's weights live.
template <masked_parameter L>
inline constexpr memory_space layer_space_v =
    memory_space_v<typename std::remove_cvref_t<L>::tensor_type>;

namespace detail {
template <class... L>
constexpr bool one_space() {
  if constexpr (sizeof...(L) == 0) {
    return true;
  } else {
    constexpr memory_space spaces[] = {layer_space_v<L>...};
    for (const memory_space s : spaces)
      if (s != spaces[0]) return false;
    return true;
  }
}
}  // namespace detail

/// Groups wrapped parameters of possibly different types, by reference, for the phase loop,
/// global thresholds and sensitivity analysis. All must live in one memory space.
template <masked_parameter... L>
[[nodiscard]] constexpr std::tuple<L&...> layers(L&... l) noexcept {
  static_assert(detail::one_space<L...>(), "dsd: a layer collection cannot mix host and device layers; keep one "
                "collection per memory space");
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

/// Memory space of a collection's layers (host for an empty tuple).
template <class C>
struct collection_space;
template <class... L>
struct collection_space<std::tuple<L...>> {
  static_assert(detail::one_space<L...>(), "dsd: a layer collection cannot mix host and device layers");
  static constexpr memory_space value = [] {
    if constexpr (sizeof...(L) == 0)
      return memory_space::host;
    else
      return std::get<0>(std::tuple{layer_space_v<L>...});
  }();
};
template <class C>
requires std::ranges::range<C>
struct collection_space<C> {
  static constexpr memory_space value = layer_space_v<std::ranges::range_reference_t<C>>;
};
template <class C>
inline constexpr memory_space collection_space_v = collection_space<std::remove_cvref_t<C>>::value;

}  // namespace dsd

namespace dsd::detail {

/// The collection's layer names, comma-separated (for error messages).
template <layer_collection C>
std::string layer_names(C& layers) {
  std::string known;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    known += (known.empty() ? "\"" : ", \"") + l.name() + "\"";
  });
  return known;
}

/// Throws unless every name in `names` is a layer of the collection, listing the valid ones:
/// a misspelt exclusion or per-layer sparsity must not be silently ignored.
template <layer_collection C, class Names>
void require_known_names(C& layers, const Names& names, std::string_view what) {
  for (const auto& n : names) {
    bool found = false;
    for_each_layer(layers, [&](auto& l, std::size_t) { found = found || l.name() == n; });
    DSD_REQUIRE(found, invalid_argument, what, ": no layer named \"", n, "\" (the layers are ",
                layer_names(layers), ")");
  }
}

/// Throws if two layers of the collection share a name (or one is unnamed), naming them.
template <layer_collection C>
void require_unique_names(C& layers, std::string_view why) {
  std::vector<std::string> seen;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    DSD_REQUIRE(!l.name().empty(), invalid_argument, why, ": layer ", i, " has no name");
    DSD_REQUIRE(std::find(seen.begin(), seen.end(), l.name()) == seen.end(), invalid_argument, why,
                ": two layers are named \"", l.name(), "\"");
    seen.push_back(l.name());
  });
}

/// Throws if two host layers of the collection view overlapping memory (one tensor wrapped
/// twice, `Masked::duplicate` beside its original, two views into one buffer), naming both:
/// their masks would disagree and each prune would zero weights the other keeps.
template <layer_collection C>
void require_disjoint_storage(C& layers, std::string_view why) {
  struct Range {
    const void* begin;
    const void* end;
    std::size_t index;
  };
  std::vector<Range> ranges;
  std::vector<std::string> names;
  for_each_layer(layers, [&](auto& l, std::size_t i) {
    using L = std::remove_cvref_t<decltype(l)>;
    names.push_back(l.name());
    if constexpr (layer_space_v<L> == memory_space::host) {
      const auto w = l.weights();
      ranges.push_back({w.data(), w.data() + w.size(), i});
    }
  });
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return std::less<const void*>{}(a.begin, b.begin);
  });
  for (std::size_t k = 1; k < ranges.size(); ++k)
    DSD_REQUIRE(!std::less<const void*>{}(ranges[k].begin, ranges[k - 1].end), invalid_argument,
                why, ": layers \"", names[ranges[k - 1].index], "\" (layer ", ranges[k - 1].index,
                ") and \"", names[ranges[k].index], "\" (layer ", ranges[k].index,
                ") share storage; wrap each tensor once");
}

}  // namespace dsd::detail
