#pragma once
/// \file
/// `Masked<cuda::device_tensor<S>>`: a weight tensor in device memory wrapped for DSD, with the
/// interface of the host `Masked` (mask, optimizer state, enforce, redense, stats) and device
/// kernels behind it, so `dsd::prune`, `dsd::prune(layers, thresholds)`, `dsd::enforce`,
/// `dsd::redense`, `dsd::layer_stats` and `dsd::run` take device layers unchanged.
///
/// Keepmax-Cut and Random-Cut run on the device and give masks bitwise equal to the CPU's for the
/// same weights and seed; any other policy (NMCut, user policies) runs on the host through a
/// download of the weights and an upload of the mask.

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_mask.cuh"
#include "dsd/backend/cuda/device_tensor.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/select.cuh"
#include "dsd/layers.hpp"
#include "dsd/masked.hpp"
#include "dsd/pruning/keepmax_cut.hpp"
#include "dsd/pruning/prune.hpp"
#include "dsd/pruning/random_cut.hpp"
#include "dsd/snapshot.hpp"
#include "dsd/threshold/global_sparsity.hpp"
#include "dsd/threshold/policy.hpp"

namespace dsd {

template <class S>
struct default_mask<cuda::device_tensor<S>> {
  using type = cuda::DeviceBitMask;
};

namespace cuda {

/// Optimizer state of a device layer: device buffers, allocated (zeroed) by the first step.
template <class S>
struct DeviceState {
  DeviceBuffer<S> first;   ///< momentum buffer, or Adam's first moment
  DeviceBuffer<S> second;  ///< Adam's second moment
  std::int64_t step = 0;   ///< updates taken (Adam's bias correction)
};

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
    DSD_REQUIRE(view.count > 0, empty_tensor, "cannot wrap layer \"", name_, "\": it has no weights");
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
  /// Name, size, kept count, sparsity and threshold (no device work: the count is kept on the host).
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

namespace detail {
template <class S>
Segment segment_of(const DeviceMasked<S>& layer, std::uint64_t* words, bool included = true) {
  return {layer.weights().ptr, words, included ? layer.size() : 0, dsd::detail::fnv1a(layer.name())};
}

/// The lowest index of a NaN/Inf element into *first (which starts at ~0).
template <class S>
__global__ void first_non_finite(const S* w, std::size_t n, unsigned long long* first) {
  for (std::size_t i = global_thread(); i < n; i += global_threads())
    if (!isfinite(w[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

/// Throws the CPU's non-finite error for the layer's first NaN/Inf weight, if it has one.
template <class S>
void require_finite(const DeviceMasked<S>& layer, SelectWorkspace& ws = default_workspace()) {
  unsigned long long* first = ws.scalar();  // no allocation once the workspace is warm
  DSD_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), layer.stream()));
  first_non_finite<<<grid_for(layer.size()), block_size, 0, layer.stream()>>>(layer.weights().ptr, layer.size(),
                                                                                first);
  DSD_CUDA_CHECK(cudaGetLastError());
  unsigned long long i = 0;
  DSD_CUDA_CHECK(cudaMemcpyAsync(&i, first, sizeof i, cudaMemcpyDeviceToHost, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
  if (i == ~0ull) return;
  S value{};
  DSD_CUDA_CHECK(cudaMemcpy(&value, layer.weights().ptr + i, sizeof value, cudaMemcpyDeviceToHost));
  dsd::detail::throw_non_finite(layer.name(), static_cast<double>(value), static_cast<std::size_t>(i));
}

/// Throws the CPU's non-finite error for the first NaN/Inf a selection met.
template <class S>
void require_finite(const DeviceSelect& r, const DeviceMasked<S>& layer) {
  if (r.bad_index == no_index) return;
  S value{};
  DSD_CUDA_CHECK(cudaMemcpyAsync(&value, layer.weights().ptr + r.bad_index, sizeof value,
                                 cudaMemcpyDeviceToHost, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
  dsd::detail::throw_non_finite(layer.name(), static_cast<double>(value), r.bad_index);
}

/// Prunes exactly `count` of the layer's weights by the keys' order on the device, writing the
/// layer's mask words in place (nothing is allocated once the workspace is warm). On a NaN/Inf
/// weight it throws before touching the mask.
template <class S, class Keys>
double prune_on_device(DeviceMasked<S>& layer, std::size_t count, const Keys& keys,
                       SelectWorkspace& ws) {
  Segment seg = segment_of(layer, nullptr);
  ws.prepare({&seg, 1}, layer.stream());
  // Rank count - 1 gives the threshold; with nothing to prune the pass still checks finiteness.
  const DeviceSelect r = select(keys, ws, count == 0 ? 0 : count - 1, layer.stream());
  require_finite(r, layer);
  double threshold = 0.0;
  if constexpr (std::is_same_v<Keys, MagnitudeKeys<S>>)
    if (count > 0)
      threshold = static_cast<double>(
          dsd::detail::magnitude_from_key<S>(static_cast<typename Keys::key_type>(r.key)));
  layer.rewrite_mask(
      [&](std::uint64_t* words) {
        if (count == 0) {
          kernels::fill_words<><<<grid_for((layer.size() + 63) / 64), block_size, 0, layer.stream()>>>(
              words, layer.size(), true);
          DSD_CUDA_CHECK(cudaGetLastError());
          return;
        }
        seg.words = words;
        ws.prepare({&seg, 1}, layer.stream());
        build_masks(keys, ws, count, layer.stream());
      },
      layer.size() - count, threshold);
  return threshold;
}
}  // namespace detail

/// A host copy of a device layer (`dsd::snapshot`, checkpoints, sensitivity analysis).
template <class S>
LayerSnapshot<S> download_snapshot(const DeviceMasked<S>& layer) {
  LayerSnapshot<S> snap{std::vector<S>(layer.size()), layer.mask().to_host(), {}, layer.threshold()};
  DSD_CUDA_CHECK(cudaMemcpyAsync(snap.weights.data(), layer.weights().ptr, layer.size() * sizeof(S),
                                 cudaMemcpyDeviceToHost, layer.stream()));
  snap.state.first = layer.state().first.download(layer.stream());
  snap.state.second = layer.state().second.download(layer.stream());
  snap.state.step = layer.state().step;
  return snap;
}

/// Puts a host copy back into a device layer (`dsd::restore`): weights, state, then the mask.
template <class S>
void upload_snapshot(DeviceMasked<S>& layer, LayerSnapshot<S> snap) {
  for (const auto* buf : {&snap.state.first, &snap.state.second})
    DSD_REQUIRE(buf->empty() || buf->size() == layer.size(), size_mismatch, "optimizer state of ",
                buf->size(), " entries for layer \"", layer.name(), "\" of ", layer.size());
  DSD_CUDA_CHECK(cudaMemcpyAsync(layer.weights().ptr, snap.weights.data(), layer.size() * sizeof(S),
                                 cudaMemcpyHostToDevice, layer.stream()));
  DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));  // snap.weights is freed on return
  auto& st = layer.state();
  st.first = snap.state.first.empty() ? DeviceBuffer<S>() : DeviceBuffer<S>(snap.state.first);
  st.second = snap.state.second.empty() ? DeviceBuffer<S>() : DeviceBuffer<S>(snap.state.second);
  st.step = snap.state.step;
  layer.set_mask(snap.mask, snap.threshold);
}

/// Per-layer prune counts for `GlobalSparsity` over device layers: one device selection across
/// all of them (found by `GlobalSparsity::prune_counts` through argument-dependent lookup),
/// queued on the first layer's stream after the work queued so far on every layer's stream.
template <layer_collection C>
std::vector<std::size_t> global_prune_counts(C& layers, const GlobalSparsity& global,
                                             SelectWorkspace& ws = default_workspace()) {
  using S = collection_scalar_t<C>;
  std::vector<Segment> segs;
  std::vector<cudaStream_t> streams;
  std::size_t total = 0;
  for_each_layer(layers, [&](auto& l, std::size_t) {
    static_assert(std::is_same_v<typename std::remove_cvref_t<decltype(l)>::scalar_type, S>,
                  "dsd: GlobalSparsity needs all layers to share one scalar type");
    const bool excluded = dsd::detail::excludes(global, l.name());
    segs.push_back(detail::segment_of(l, nullptr, !excluded));
    streams.push_back(l.stream());
    total += segs.back().n;
  });
  DSD_REQUIRE(total > 0, empty_tensor, "GlobalSparsity over layers with no prunable weights");
  const std::size_t k = prune_count(total, global.sparsity, "<global>");
  std::vector<std::size_t> counts(segs.size(), 0);
  if (k == 0) return counts;
  // The selection reads every layer on one stream: it must see what each layer's own stream
  // wrote (an optimizer step, an upload). It waits for the host before returning, so nothing
  // is left reading the weights afterwards.
  const cudaStream_t stream = streams.front();
  Event carrier;  // no CUDA call unless some layer has a stream of its own
  for (std::size_t i = 1; i < streams.size(); ++i)
    if (std::find(streams.begin(), streams.begin() + i, streams[i]) == streams.begin() + i)
      order_after(streams[i], stream, carrier);
  // NaN/Inf are not reported here: each layer's own prune does, in layer order, as on the CPU.
  const dsd::cuda::detail::MagnitudeKeys<S> keys;
  ws.prepare(segs, stream);
  const DeviceSelect r = select(keys, ws, k - 1, stream);
  const auto below = count_below(keys, ws, stream);
  std::uint64_t ties_left = k - r.less;
  for (std::size_t s = 0; s < segs.size(); ++s) {
    const std::uint64_t ties = std::min<std::uint64_t>(below[s].second, ties_left);
    ties_left -= ties;
    counts[s] = below[s].first + ties;
  }
  return counts;
}

}  // namespace cuda

/// Validates a prune of a device layer and prepares it (see the host `prepare_prune`): the count
/// and the weights' finiteness are checked now (one pass on the device); Keepmax-Cut and
/// Random-Cut then select on the device in the commit, other policies (NMCut, user policies)
/// build their mask on the host now from a copy of the weights and upload it in the commit.
template <class Policy = KeepmaxCut, class S>
[[nodiscard]] std::function<LayerStats()> prepare_prune(cuda::DeviceMasked<S>& layer, std::size_t count,
                                                        const Policy& policy = {}) {
  DSD_REQUIRE(count <= layer.size(), invalid_argument, "cannot prune ", count,
              " weights of layer \"", layer.name(), "\", which has ", layer.size());
  if constexpr (std::is_same_v<Policy, KeepmaxCut> || std::is_same_v<Policy, RandomCut>) {
    if constexpr (std::is_same_v<Policy, RandomCut>)  // the host policy's rule, checked up front
      DSD_REQUIRE(!layer.name().empty(), invalid_argument,
                  "RandomCut needs a named layer: its random stream is keyed by the name, so unnamed "
                  "layers of one size would all get the same pattern");
    cuda::detail::require_finite(layer);
    const auto keys = [&] {
      if constexpr (std::is_same_v<Policy, KeepmaxCut>)
        return cuda::detail::MagnitudeKeys<S>{};
      else
        return cuda::detail::RandomKeys<S>{policy.seed};
    }();
    return [&layer, count, keys] {
      cuda::detail::prune_on_device(layer, count, keys, cuda::default_workspace());
      return layer.stats();
    };
  } else {
    std::vector<S> host(layer.size());
    DSD_CUDA_CHECK(cudaMemcpyAsync(host.data(), layer.weights().ptr, host.size() * sizeof(S),
                                   cudaMemcpyDeviceToHost, layer.stream()));
    DSD_CUDA_CHECK(cudaStreamSynchronize(layer.stream()));
    Masked<std::vector<S>> staged(host, layer.name(), layer.shape());
    prune_exactly(staged, count, policy);
    return [&layer, m = staged.mask(), t = staged.threshold()] {
      layer.set_mask(m, t);
      return layer.stats();
    };
  }
}

}  // namespace dsd
