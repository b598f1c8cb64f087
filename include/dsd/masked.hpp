#pragma once
/// \file
/// `Masked<T, Mask>`: a view of the user's weight tensor plus its mask and optimizer state.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "dsd/error.hpp"
#include "dsd/mask.hpp"
#include "dsd/optimizer_state.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

/// Per-layer statistics reported after pruning and by the phase loop.
struct LayerStats {
  std::string name;
  std::size_t size = 0;    ///< number of weights
  std::size_t kept = 0;    ///< weights the mask keeps
  double sparsity = 0.0;   ///< pruned fraction
  double threshold = 0.0;  ///< largest pruned |w| at the last prune (0 when none was pruned)
};

/// The mask a `Masked<T>` keeps unless told otherwise: `BitMask` for host tensors. A backend
/// specialises it for its tensors (the CUDA backend: `cuda::DeviceBitMask`, same bit layout).
template <class T>
struct default_mask {
  using type = BitMask;
};
template <class T>
using default_mask_t = typename default_mask<std::remove_cvref_t<T>>::type;

/// A parameter of the user's trainer, wrapped for DSD. The weights stay in the user's storage:
/// `Masked` holds a pointer to an owning tensor (vector, Eigen matrix) or a copy of a view (span,
/// Eigen::Map, raw_tensor), never a copy of the data. It is move-only: an implicit copy would
/// share the weights but own a separate mask, so pruning the copy would zero the original's
/// weights while its mask still read dense. `duplicate()` makes such a second wrapper when that
/// is really meant; `dsd::snapshot` copies the data.
///
/// This is the host implementation; the CUDA backend specialises `Masked<cuda::device_tensor<S>>`
/// with the same interface and device kernels.
template <parameter_tensor T, class Mask = default_mask_t<T>>
class Masked {
  static_assert(memory_space_v<T> == memory_space::host,
                "dsd: Masked of a device tensor needs its backend header, e.g. "
                "<dsd/backend/cuda/masked.cuh> for dsd::cuda::device_tensor");
  static_assert(mask_storage<Mask>, "dsd: Masked's mask type must model dsd::mask_storage");

 public:
  using tensor_type = T;
  using mask_type = Mask;
  using scalar_type = scalar_t<T>;

  /// Wraps an owning tensor; it must outlive the wrapper and keep its size. (Temporaries do not
  /// bind: the wrapper would dangle.)
  explicit Masked(T& tensor, std::string name = {}) requires(!is_view_v<T>)
      : tensor_(&tensor), name_(std::move(name)) {
    init(shape_of(tensor));
  }
  /// As above, with the storage-order shape given (e.g. rows x columns of a matrix kept in a
  /// std::vector); it must hold exactly the tensor's elements.
  Masked(T& tensor, std::string name, Shape shape) requires(!is_view_v<T>)
      : tensor_(&tensor), name_(std::move(name)) {
    init(shape);
  }
  /// Wraps a view (span, Map, raw_tensor); the viewed storage must outlive the wrapper.
  explicit Masked(T view, std::string name = {}) requires(is_view_v<T>)
      : tensor_(std::move(view)), name_(std::move(name)) {
    init(shape_of(tensor()));
  }
  /// As above, with the storage-order shape given (e.g. a std::span over a rows x columns
  /// matrix); it must hold exactly the viewed elements.
  Masked(T view, std::string name, Shape shape) requires(is_view_v<T>)
      : tensor_(std::move(view)), name_(std::move(name)) {
    init(shape);
  }

  Masked(const Masked&) = delete;
  Masked& operator=(const Masked&) = delete;
  Masked(Masked&&) noexcept = default;
  Masked& operator=(Masked&&) noexcept = default;

  /// A second wrapper of the same weights with a copy of this one's mask, state and threshold.
  /// The two share the weights but not the mask: pruning either zeroes weights the other's mask
  /// may still keep. For a copy of the data, use `dsd::snapshot`.
  [[nodiscard]] Masked duplicate() const { return Masked(*this, copy_tag{}); }

  /// The wrapped weights, in place. Throws if the tensor was resized since it was wrapped.
  [[nodiscard]] std::span<scalar_type> weights() const {
    const std::span<scalar_type> w = as_span(tensor());
    DSD_REQUIRE(w.size() == mask_.size(), size_mismatch, "layer \"", name_, "\" has ", w.size(),
                " weights but its mask has ", mask_.size(),
                " entries; was the tensor resized after it was wrapped?");
    return w;
  }
  [[nodiscard]] const Mask& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t size() const noexcept { return mask_.size(); }
  /// Storage-order shape of the wrapped tensor.
  [[nodiscard]] Shape shape() const noexcept { return shape_; }
  [[nodiscard]] OptimizerState<scalar_type>& state() noexcept { return state_; }
  [[nodiscard]] const OptimizerState<scalar_type>& state() const noexcept { return state_; }
  /// Largest pruned |w| at the last prune; 0 when nothing is pruned.
  [[nodiscard]] double threshold() const noexcept { return threshold_; }

  /// Installs a new mask, then enforces it (weights and optimizer state zeroed where pruned).
  /// `threshold` is recorded as given: the prune's cut (0 when it pruned nothing; a policy over
  /// signed scores may return a negative one). A shard of a
  /// sharded tensor records its tensor's cut even when its own slice lost nothing, so every rank
  /// reports the same value.
  void set_mask(Mask mask, double threshold = 0.0) {
    DSD_REQUIRE(mask.size() == mask_.size(), size_mismatch, "mask of ", mask.size(),
                " entries for layer \"", name_, "\" of ", mask_.size(), " weights");
    mask_ = std::move(mask);
    threshold_ = threshold;
    enforce();
  }

  /// W = W ⊙ Mask, and the same for every optimizer buffer. Call after a step of your own
  /// optimizer; dsd's optimizers fuse this into their update.
  void enforce() {
    detail::zero_where_pruned(mask_, weights().data());
    zero_state_where_pruned();
  }

  /// Removes the mask: pruned weights and their optimizer state restart at exactly zero.
  void redense() {
    enforce();
    mask_.fill(true);
    threshold_ = 0.0;
  }

  /// Name, size, kept count, sparsity and threshold of this layer.
  [[nodiscard]] LayerStats stats() const {
    const std::size_t kept = mask_.count();
    return {name_, mask_.size(), kept, sparsity(mask_), threshold_};
  }

 private:
  static constexpr bool stores_pointer = !is_view_v<T>;
  struct copy_tag {};
  Masked(const Masked& o, copy_tag)
      : tensor_(o.tensor_), name_(o.name_), shape_(o.shape_), mask_(o.mask_), state_(o.state_),
        threshold_(o.threshold_) {}

  [[nodiscard]] T& tensor() const {
    if constexpr (stores_pointer)
      return *tensor_;
    else
      return const_cast<T&>(tensor_);  // a view: constness of the handle, not of the data
  }
  void init(Shape shape) {
    const std::size_t n = as_span(tensor()).size();
    DSD_REQUIRE(n > 0, empty_tensor, "cannot wrap layer \"", name_, "\": it has no weights");
    DSD_REQUIRE(shape.size() == n, size_mismatch, "shape ", shape.outer, "x", shape.inner,
                " of layer \"", name_, "\" holds ", shape.size(), " elements but the tensor has ",
                n);
    shape_ = shape;
    mask_ = Mask(n, true);
  }
  void zero_state_where_pruned() {
    for (auto* buf : {&state_.first, &state_.second}) {
      if (buf->empty()) continue;
      DSD_REQUIRE(buf->size() == mask_.size(), size_mismatch, "optimizer state of layer \"", name_,
                  "\" has ", buf->size(), " entries, expected ", mask_.size());
      detail::zero_where_pruned(mask_, buf->data());
    }
  }

  std::conditional_t<stores_pointer, T*, T> tensor_;
  std::string name_;
  Shape shape_;
  Mask mask_;
  OptimizerState<scalar_type> state_;
  double threshold_ = 0.0;
};

// Deduction: `Masked m(vec)` picks the owning-tensor constructor (by reference), `Masked
// m(span)` the view constructor (by value). GCC does so from the constructors' constraints;
// clang 14 leaves those out of the implicit guides and finds them ambiguous, hence these.
template <parameter_tensor T>
  requires(!is_view_v<T>)
Masked(T&, std::string = {}) -> Masked<T>;
template <parameter_tensor T>
  requires(!is_view_v<T>)
Masked(T&, std::string, Shape) -> Masked<T>;
template <parameter_tensor T>
  requires(is_view_v<T>)
Masked(T, std::string = {}) -> Masked<T>;
template <parameter_tensor T>
  requires(is_view_v<T>)
Masked(T, std::string, Shape) -> Masked<T>;

/// Whether `L` is a `Masked` parameter (any tensor, any mask).
template <class L>
inline constexpr bool is_masked_v = false;
template <class T, class M>
inline constexpr bool is_masked_v<Masked<T, M>> = true;

/// A wrapped parameter: what prune, enforce, redense and the optimizers accept.
template <class L>
concept masked_parameter = is_masked_v<std::remove_cvref_t<L>>;

}  // namespace dsd
