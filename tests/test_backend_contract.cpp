// The backend contract (dsd/backend/contract.hpp) as a second backend would meet it: a "remote"
// backend whose tensors are marked as device memory (they are host memory underneath, so the
// test runs anywhere) provides the five hooks, and dsd's host algorithms (collection prune,
// GlobalSparsity, snapshot and restore) reach its layers through them alone. A backend that
// lacks a hook does not satisfy `backend_layer`.
#include <doctest/doctest.h>

#include <dsd/backend/contract.hpp>
#include <dsd/dsd.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace remote {

/// The backend's tensor; `Snapshots` = false leaves out hook 5.
template <class S, bool Snapshots = true>
struct tensor {
  S* ptr = nullptr;
  std::size_t count = 0;
};

/// The backend's mask (its own type, as DeviceBitMask is CUDA's).
struct Mask {
  dsd::BitMask bits;
  [[nodiscard]] std::size_t size() const noexcept { return bits.size(); }
};

/// How often each hook ran.
struct Calls {
  int prepare = 0, global = 0, download = 0, upload = 0;
};
inline Calls calls;

}  // namespace remote

template <class S, bool Snapshots>
struct dsd::tensor_traits<remote::tensor<S, Snapshots>> {
  using scalar_type = S;
  static S* data(const remote::tensor<S, Snapshots>& t) noexcept { return t.ptr; }
  static std::size_t size(const remote::tensor<S, Snapshots>& t) noexcept { return t.count; }
  static constexpr bool is_view = true;
  static constexpr memory_space space = memory_space::cuda;  // "not host memory"
};

namespace dsd {

// Hook 1.
template <class S, bool Snapshots>
struct default_mask<remote::tensor<S, Snapshots>> {
  using type = remote::Mask;
};

// Hook 2: the remote layer, kept by a host Masked over the same memory.
template <class S, bool Snapshots>
class Masked<remote::tensor<S, Snapshots>, remote::Mask> {
 public:
  using tensor_type = remote::tensor<S, Snapshots>;
  using mask_type = remote::Mask;
  using scalar_type = S;

  Masked(tensor_type t, std::string name)
      : tensor_(t), host_(std::span<S>(t.ptr, t.count), std::move(name)) {
    mask_.bits = host_.mask();
  }
  [[nodiscard]] tensor_type weights() const noexcept { return tensor_; }
  [[nodiscard]] const remote::Mask& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::string& name() const noexcept { return host_.name(); }
  [[nodiscard]] std::size_t size() const noexcept { return host_.size(); }
  [[nodiscard]] Shape shape() const noexcept { return host_.shape(); }
  [[nodiscard]] OptimizerState<S>& state() noexcept { return host_.state(); }
  [[nodiscard]] double threshold() const noexcept { return host_.threshold(); }
  [[nodiscard]] LayerStats stats() const { return host_.stats(); }
  void set_mask(const BitMask& m, double threshold) {
    host_.set_mask(m, threshold);
    mask_.bits = host_.mask();
  }
  void enforce() { host_.enforce(); }
  void redense() {
    host_.redense();
    mask_.bits = host_.mask();
  }
  /// The host twin, for the hooks.
  [[nodiscard]] Masked<std::span<S>>& host() noexcept { return host_; }
  [[nodiscard]] const Masked<std::span<S>>& host() const noexcept { return host_; }

 private:
  tensor_type tensor_;
  Masked<std::span<S>> host_;
  remote::Mask mask_;
};

}  // namespace dsd

namespace remote {

template <class S, bool Snapshots = true>
using Layer = dsd::Masked<tensor<S, Snapshots>, Mask>;

// Hook 3: prepares on the host twin, commits into the remote layer.
template <class S, bool Snapshots, class Policy>
std::function<dsd::LayerStats()> prepare_prune(Layer<S, Snapshots>& l, std::size_t count,
                                               const Policy& policy) {
  ++calls.prepare;
  auto staged = l.host().duplicate();
  dsd::prune_exactly(staged, count, policy);
  return [&l, m = staged.mask(), t = staged.threshold()] {
    l.set_mask(m, t);
    return l.stats();
  };
}

// Hook 4: the host cut over twins of every layer.
template <class S, bool Snapshots>
std::vector<std::size_t> global_prune_counts(std::vector<Layer<S, Snapshots>>& layers,
                                             const dsd::GlobalSparsity& global) {
  ++calls.global;
  std::vector<dsd::Masked<std::span<S>>> twins;
  for (auto& l : layers) twins.push_back(l.host().duplicate());
  return global.prune_counts(twins);
}

// Hook 5 (only where Snapshots).
template <class S>
dsd::LayerSnapshot<S> download_snapshot(const Layer<S, true>& l) {
  ++calls.download;
  return dsd::snapshot(l.host());
}
template <class S>
void upload_snapshot(Layer<S, true>& l, dsd::LayerSnapshot<S> snap) {
  ++calls.upload;
  dsd::restore(l.host(), std::move(snap));
  l.set_mask(l.host().mask(), l.host().threshold());
}

}  // namespace remote

static_assert(dsd::backend_layer<remote::Layer<float>>);
static_assert(dsd::backend_layer<remote::Layer<double>>);
static_assert(!dsd::backend_layer<remote::Layer<float, false>>, "hook 5 missing");
static_assert(!dsd::backend_layer<dsd::Masked<std::vector<float>>>, "a host layer is no backend's");

namespace {

std::vector<float> weights(std::size_t n, float scale) {
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i)
    w[i] = scale * static_cast<float>((i * 37) % 101) - 50.0f * scale;  // distinct magnitudes
  return w;
}

}  // namespace

TEST_CASE(
    "a backend that meets the contract is pruned, globally cut and restored through its hooks") {
  std::vector<float> a = weights(300, 1.0f), b = weights(200, 0.5f);
  std::vector<float> ha = a, hb = b;  // the same weights as host layers
  std::vector<remote::Layer<float>> layers;
  layers.emplace_back(remote::tensor<float>{a.data(), a.size()}, "a");
  layers.emplace_back(remote::tensor<float>{b.data(), b.size()}, "b");
  std::vector<dsd::Masked<std::vector<float>>> host;
  host.emplace_back(ha, "a");
  host.emplace_back(hb, "b");
  remote::calls = {};

  SUBCASE("per-layer sparsity: one prepare per layer, the host's masks") {
    const auto stats = dsd::prune(layers, dsd::UniformSparsity{0.4});
    dsd::prune(host, dsd::UniformSparsity{0.4});
    CHECK(remote::calls.prepare == 2);
    CHECK(remote::calls.global == 0);
    CHECK(stats[0].kept == 180);
    CHECK(stats[1].kept == 120);
    for (std::size_t i = 0; i < 2; ++i) CHECK(layers[i].mask().bits == host[i].mask());
    CHECK(a == ha);
    CHECK(b == hb);
  }
  SUBCASE("GlobalSparsity asks the backend for the counts") {
    const auto stats = dsd::prune(layers, dsd::GlobalSparsity{0.5});
    const auto host_stats = dsd::prune(host, dsd::GlobalSparsity{0.5});
    CHECK(remote::calls.global == 1);
    CHECK(remote::calls.prepare == 2);
    CHECK(stats[0].kept + stats[1].kept == 250);
    CHECK(stats[0].kept == host_stats[0].kept);
    for (std::size_t i = 0; i < 2; ++i) CHECK(layers[i].mask().bits == host[i].mask());
  }
  SUBCASE("snapshot and restore go through hooks 5") {
    dsd::prune(layers, dsd::UniformSparsity{0.5});
    const auto snap = dsd::snapshot(layers[0]);
    CHECK(remote::calls.download == 1);
    CHECK(snap.mask.count() == 150);
    layers[0].redense();
    a.assign(a.size(), 7.0f);
    dsd::restore(layers[0], snap);
    CHECK(remote::calls.upload == 1);
    CHECK(layers[0].mask().bits == snap.mask);
    CHECK(std::vector<float>(a.begin(), a.end()) == snap.weights);
    CHECK(layers[0].stats().kept == 150);
  }
}
