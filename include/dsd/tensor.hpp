#pragma once
/// \file
/// What counts as a parameter tensor, and the traits through which any type plugs in.
///
/// A parameter tensor is contiguous storage of `float` or `double`. dsd reads and writes it in
/// place through `tensor_traits<T>`; it never copies the user's weights. To plug in a new type,
/// specialise `dsd::tensor_traits` with `scalar_type`, `data`, `size` and (optionally) `shape`,
/// `is_view` and `space`; see `dsd/adapters/eigen.hpp` for an example.
///
/// A tensor also says where its elements live (`memory_space`): host memory unless its traits
/// declare `static constexpr memory_space space = memory_space::cuda` (`dsd::cuda::device_tensor`
/// does). Code that reads elements on the host (`as_span`, the CPU kernels) refuses device tensors
/// at compile time; `Masked` picks its mask and kernels by the space.

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

/// Where a tensor's elements live.
enum class memory_space {
  host,  ///< ordinary CPU memory
  cuda,  ///< CUDA device memory (the `dsd::cuda` backend)
};

/// Customisation point: specialise for a type to make it a `parameter_tensor`.
/// Required members: `using scalar_type`, `static scalar_type* data(T&)`,
/// `static const scalar_type* data(const T&)`, `static std::size_t size(const T&)`.
/// Optional: `static Shape shape(const T&)` (default: one run of `size` elements),
/// `static constexpr bool is_view` (true when copying the object does not copy the data) and
/// `static constexpr memory_space space` (default: host).
template <class T>
struct tensor_traits;

/// A non-owning pointer + extent, for weights that live in raw buffers.
template <class S>
struct raw_tensor {
  S* ptr = nullptr;       ///< first element
  std::size_t count = 0;  ///< number of elements
  Shape dims{};           ///< storage-order shape; {1, count} when left empty, else must hold count
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
  // Left empty, the dims mean one run of `count`; given, they are taken as they are, and
  // wrapping checks they hold exactly `count` elements (a mismatch is an error, not a flattening).
  static Shape shape(const raw_tensor<S>& t) noexcept {
    return t.dims == Shape{} ? Shape{1, t.count} : t.dims;
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

/// Where the elements of `T` live: host memory unless its traits say otherwise.
template <class T>
inline constexpr memory_space memory_space_v = [] {
  if constexpr (requires { detail::traits_of<T>::space; })
    return memory_space{detail::traits_of<T>::space};
  else
    return memory_space::host;
}();

/// A parameter tensor in host memory: what the CPU kernels read and write.
template <class T>
concept host_tensor = parameter_tensor<T> && memory_space_v<T> == memory_space::host;

namespace detail {
template <class T>
constexpr void require_host_memory() {
  static_assert(memory_space_v<T> == memory_space::host,
                "dsd: this call reads the tensor's elements on the host, but they live in device "
                "memory; use the dsd::cuda backend's calls (dsd/backend/cuda/) for device tensors");
}
}  // namespace detail

/// Mutable span over a host tensor's elements. Not noexcept: the traits are user code (a
/// torch view re-checks its tensor's dtype and device and throws `dsd::error`).
template <parameter_tensor T>
[[nodiscard]] std::span<scalar_t<T>> as_span(T& t) {
  detail::require_host_memory<T>();
  return {detail::traits_of<T>::data(t), detail::traits_of<T>::size(t)};
}

/// Read-only span over a host tensor's elements.
template <readable_tensor T>
[[nodiscard]] std::span<const scalar_t<T>> as_const_span(const T& t) {
  detail::require_host_memory<T>();
  return {detail::traits_of<T>::data(t), detail::traits_of<T>::size(t)};
}

/// Storage-order shape of a tensor; one run of `size` elements unless the traits say otherwise.
template <readable_tensor T>
[[nodiscard]] Shape shape_of(const T& t) {
  if constexpr (requires { detail::traits_of<T>::shape(t); })
    return detail::traits_of<T>::shape(t);
  else
    return Shape{1, detail::traits_of<T>::size(t)};
}

}  // namespace dsd
