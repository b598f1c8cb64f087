#pragma once
/// \file
/// What counts as a parameter tensor, and the traits through which any type plugs in.
///
/// A parameter tensor is contiguous storage of `float` or `double`. dsd reads and writes it in
/// place through `tensor_traits<T>`; it never copies the user's weights. To plug in a new type,
/// specialise `dsd::tensor_traits` with `scalar_type`, `data`, `size` and (optionally) `shape`
/// and `is_view`; see `dsd/adapters/eigen.hpp` for an example.

#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace dsd {

/// Storage-order shape of a tensor seen as a matrix: `outer` runs of `inner` contiguous elements.
/// CSR conversion and N:M groups follow this order (for a row-major matrix: rows x columns).
struct Shape {
  std::size_t outer = 0;  ///< number of contiguous runs (rows of a row-major matrix)
  std::size_t inner = 0;  ///< elements per run (columns of a row-major matrix)

  [[nodiscard]] constexpr std::size_t size() const noexcept { return outer * inner; }
  friend constexpr bool operator==(Shape, Shape) = default;
};

/// Customisation point: specialise for a type to make it a `parameter_tensor`.
/// Required members: `using scalar_type`, `static scalar_type* data(T&)`,
/// `static const scalar_type* data(const T&)`, `static std::size_t size(const T&)`.
/// Optional: `static Shape shape(const T&)` (default: one run of `size` elements) and
/// `static constexpr bool is_view` (true when copying the object does not copy the data).
template <class T>
struct tensor_traits;

/// A non-owning pointer + extent, for weights that live in raw buffers.
template <class S>
struct raw_tensor {
  S* ptr = nullptr;       ///< first element
  std::size_t count = 0;  ///< number of elements
  Shape dims{};           ///< storage-order shape; {1, count} when left empty
};

template <class S, class A>
struct tensor_traits<std::vector<S, A>> {
  using scalar_type = S;
  static S* data(std::vector<S, A>& t) noexcept { return t.data(); }
  static const S* data(const std::vector<S, A>& t) noexcept { return t.data(); }
  static std::size_t size(const std::vector<S, A>& t) noexcept { return t.size(); }
  static constexpr bool is_view = false;
};

template <class S, std::size_t E>
struct tensor_traits<std::span<S, E>> {
  using scalar_type = std::remove_const_t<S>;
  static S* data(const std::span<S, E>& t) noexcept { return t.data(); }
  static std::size_t size(const std::span<S, E>& t) noexcept { return t.size(); }
  static constexpr bool is_view = true;
};

template <class S>
struct tensor_traits<raw_tensor<S>> {
  using scalar_type = std::remove_const_t<S>;
  static S* data(const raw_tensor<S>& t) noexcept { return t.ptr; }
  static std::size_t size(const raw_tensor<S>& t) noexcept { return t.count; }
  static Shape shape(const raw_tensor<S>& t) noexcept {
    return t.dims.size() == t.count && t.count != 0 ? t.dims : Shape{1, t.count};
  }
  static constexpr bool is_view = true;
};

/// The scalar types dsd updates in place.
template <class S>
concept floating_scalar = std::same_as<S, float> || std::same_as<S, double>;

namespace detail {
template <class T>
using traits_of = tensor_traits<std::remove_cvref_t<T>>;
}  // namespace detail

/// Any type whose elements dsd can read: traits give a float/double scalar, data and size.
template <class T>
concept readable_tensor = requires(const std::remove_cvref_t<T>& t) {
  typename detail::traits_of<T>::scalar_type;
  requires floating_scalar<typename detail::traits_of<T>::scalar_type>;
  {
    detail::traits_of<T>::data(t)
    } -> std::convertible_to<const typename detail::traits_of<T>::scalar_type*>;
  { detail::traits_of<T>::size(t) } -> std::convertible_to<std::size_t>;
};

/// A contiguous float/double tensor dsd can update in place: the contract of a wrapped weight.
template <class T>
concept parameter_tensor = readable_tensor<T> && requires(std::remove_cvref_t<T>& t) {
  { detail::traits_of<T>::data(t) } -> std::same_as<typename detail::traits_of<T>::scalar_type*>;
};

/// Element type of a tensor.
template <readable_tensor T>
using scalar_t = typename detail::traits_of<T>::scalar_type;

/// True when copying a `T` does not copy its elements (spans, maps, raw pointers).
template <class T>
inline constexpr bool is_view_v = [] {
  if constexpr (requires { detail::traits_of<T>::is_view; })
    return bool(detail::traits_of<T>::is_view);
  else
    return false;
}();

/// Mutable span over a parameter tensor's elements.
template <parameter_tensor T>
[[nodiscard]] std::span<scalar_t<T>> as_span(T& t) noexcept {
  return {detail::traits_of<T>::data(t), detail::traits_of<T>::size(t)};
}

/// Read-only span over any readable tensor's elements.
template <readable_tensor T>
[[nodiscard]] std::span<const scalar_t<T>> as_const_span(const T& t) noexcept {
  return {detail::traits_of<T>::data(t), detail::traits_of<T>::size(t)};
}

/// Storage-order shape of a tensor; one run of `size` elements unless the traits say otherwise.
template <readable_tensor T>
[[nodiscard]] Shape shape_of(const T& t) noexcept {
  if constexpr (requires { detail::traits_of<T>::shape(t); })
    return detail::traits_of<T>::shape(t);
  else
    return Shape{1, detail::traits_of<T>::size(t)};
}

}  // namespace dsd
