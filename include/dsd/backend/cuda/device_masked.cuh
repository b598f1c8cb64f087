#pragma once
/// \file
/// `Masked<cuda::device_tensor<S>>` (`cuda::DeviceMasked<S>`): a weight tensor in device memory
/// wrapped for DSD, with the interface of the host `Masked` (mask, optimizer state, enforce,
/// redense, stats) and device kernels behind it; and `default_mask` for device tensors
/// (backend contract, hooks 1 and 2: see dsd/backend/contract.hpp).

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dsd/backend/cuda/device_mask.cuh"
#include "dsd/backend/cuda/device_state.cuh"
#include "dsd/backend/cuda/device_tensor.cuh"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/masked.hpp"

namespace dsd {

template <class S>
struct default_mask<cuda::device_tensor<S>> {
  using type = cuda::DeviceBitMask;
};

namespace cuda {
namespace kernels {
/// Zeroes the weights and the (optional) state buffers where the mask prunes.
template <class S>
__global__ void enforce(S* w, S* first, S* second, const std::uint64_t* words, std::size_t n) {
  for (std::size_t i = global_thread(); i < n; i += global_threads()) {
    if ((words[i >> 6] >> (i & 63)) & 1u) continue;
    w[i] = S(0);
    if (first) first[i] = S(0);
    if (second) second[i] = S(0);
  }
}
}  // namespace kernels

}  // namespace cuda

/// A device weight tensor wrapped for DSD. Move-only: the mask and state are device memory, and
/// a second wrapper of the same weights would disagree with this one about the mask.
template <class S>
class Masked<cuda::device_tensor<S>, cuda::DeviceBitMask> {
 public:
  using tensor_type = cuda::device_tensor<S>;
  using mask_type = cuda::DeviceBitMask;
  using scalar_type = std::remove_const_t<S>;
  static_assert(floating_scalar<scalar_type> && !std::is_const_v<S>,
                "dsd: a device parameter is a device_tensor of mutable float or double");

  explicit Masked(cuda::device_tensor<S> view, std::string name = {})
      : tensor_(view), name_(std::move(name)) {
    DSD_REQUIRE(view.count > 0, empty_tensor, "cannot wrap layer \"", name_,
                "\": it has no weights");
    DSD_REQUIRE(view.ptr != nullptr, invalid_argument, "layer \"", name_,
                "\": device_tensor with a null pointer and ", view.count, " elements");
    DSD_REQUIRE(view.shape().size() == view.count, size_mismatch, "shape ", view.shape().outer, "x",
                view.shape().inner, " of layer \"", name_, "\" holds ", view.shape().size(),
                " elements but the tensor has ", view.count);
    cudaPointerAttributes attr{};
    DSD_CUDA_CHECK(cudaPointerGetAttributes(&attr, view.ptr));
    DSD_REQUIRE(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged,
                invalid_argument, "layer \"", name_,
                "\": device_tensor points to host memory; wrap host weights as a host tensor");
    device_ = attr.device;
    mask_ = cuda::DeviceBitMask(view.count, true, view.stream);
    kept_ = view.count;
  }
  Masked(const Masked&) = delete;
  Masked& operator=(const Masked&) = delete;
  Masked(Masked&&) noexcept = default;
  Masked& operator=(Masked&&) noexcept = default;

  /// The wrapped device weights (a view).
  [[nodiscard]] cuda::device_tensor<S> weights() const noexcept { return tensor_; }
  [[nodiscard]] const cuda::DeviceBitMask& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t size() const noexcept { return tensor_.count; }
  [[nodiscard]] Shape shape() const noexcept { return tensor_.shape(); }
  [[nodiscard]] cudaStream_t stream() const noexcept { return tensor_.stream; }
  /// The device that holds the weights.
  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] cuda::DeviceState<scalar_type>& state() noexcept { return state_; }
  [[nodiscard]] const cuda::DeviceState<scalar_type>& state() const noexcept { return state_; }
  [[nodiscard]] double threshold() const noexcept { return threshold_; }
  /// Increases whenever the mask may have changed (set, rewritten, re-densed): what a cache of
  /// the pattern (e.g. a `SparseLinear`) compares against to know it must rebuild.
  [[nodiscard]] std::uint64_t mask_version() const noexcept { return version_; }

  /// Throws unless `grad` can be this layer's gradient in `who`'s update (an optimizer's name):
  /// as many elements as weights, in device memory on the weights' device. Changes nothing; the
  /// last pointer that passed is remembered, so a training loop's gradient buffers are looked up
  /// once rather than every step.
  template <class GS>
  void require_gradient(std::string_view who, const cuda::device_tensor<GS>& grad) const {
    DSD_REQUIRE(grad.count == size(), size_mismatch, who, ": gradient of ", grad.count,
                " elements for layer \"", name_, "\" of ", size(), " weights");
    DSD_REQUIRE(grad.ptr != nullptr, invalid_argument, who, ": the gradient for layer \"", name_,
                "\" is a null pointer");
    if (grad.ptr == checked_gradient_) return;
    cudaPointerAttributes attr{};
    DSD_CUDA_CHECK(cudaPointerGetAttributes(&attr, grad.ptr));
    DSD_REQUIRE(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged,
                invalid_argument, who, ": the gradient for layer \"", name_,
                "\" is in host memory; pass device memory");
    DSD_REQUIRE(attr.type == cudaMemoryTypeManaged || attr.device == device_, invalid_argument, who,
                ": the gradient for layer \"", name_, "\" is on device ", attr.device,
                ", its weights on device ", device_);
    checked_gradient_ = grad.ptr;
  }

  /// Installs a new mask (device or host), then enforces it.
  void set_mask(cuda::DeviceBitMask mask, double threshold = 0.0) {
    DSD_REQUIRE(mask.size() == size(), size_mismatch, "mask of ", mask.size(),
                " entries for layer \"", name_, "\" of ", size(), " weights");
    mask_ = std::move(mask);
    ++version_;
    kept_ = mask_.count();
    threshold_ = kept_ == size() ? 0.0 : threshold;
    enforce();
  }

  /// Rewrites the mask in place: `write(words)` queues kernels that overwrite every word (device
  /// pointer) on the layer's stream so that exactly `kept` entries are kept; then enforces it.
  /// What the device pruning uses, so that pruning allocates nothing.
  template <class Write>
  void rewrite_mask(Write&& write, std::size_t kept, double threshold) {
    write(mask_.words());
    ++version_;
    kept_ = kept;
    threshold_ = kept_ == size() ? 0.0 : threshold;
    enforce();
  }
  void set_mask(const BitMask& mask, double threshold = 0.0) {
    set_mask(cuda::DeviceBitMask(mask, stream()), threshold);
  }

  /// W = W ⊙ Mask and the same for the optimizer state, on the layer's stream.
  void enforce() {
    cuda::kernels::enforce<<<cuda::grid_for(size()), cuda::block_size, 0, stream()>>>(
        tensor_.ptr, state_.first.empty() ? nullptr : state_.first.data(),
        state_.second.empty() ? nullptr : state_.second.data(), mask_.words(), size());
    DSD_CUDA_CHECK(cudaGetLastError());
  }
  /// Removes the mask: pruned weights and their state restart at exactly zero.
  void redense() {
    enforce();
    mask_.fill(true);
    ++version_;
    kept_ = size();
    threshold_ = 0.0;
  }
  /// Name, size, kept count, sparsity and threshold (no device work: the count is kept on the
  /// host).
  [[nodiscard]] LayerStats stats() const {
    return {name_, size(), kept_, 1.0 - static_cast<double>(kept_) / static_cast<double>(size()),
            threshold_};
  }

 private:
  cuda::device_tensor<S> tensor_;
  std::string name_;
  cuda::DeviceBitMask mask_;
  cuda::DeviceState<scalar_type> state_;
  std::size_t kept_ = 0;
  std::uint64_t version_ = 0;
  double threshold_ = 0.0;
  int device_ = 0;
  mutable const void* checked_gradient_ = nullptr;  ///< the last gradient require_gradient passed
};

namespace cuda {

/// A wrapped device parameter.
template <class S>
using DeviceMasked = Masked<device_tensor<S>, DeviceBitMask>;

}  // namespace cuda
}  // namespace dsd
