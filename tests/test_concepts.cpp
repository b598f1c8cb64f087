// Compile-time contract checks: which types satisfy which concept. The test binary only has to
// build; the runtime case confirms it was compiled.
#include <doctest/doctest.h>

#include <array>
#include <dsd/concepts.hpp>  // alone: the listed concepts are all reachable from it
#include <dsd/dsd.hpp>
#include <list>
#include <span>
#include <vector>

namespace {
struct UserTensor {  // a user's own storage type, plugged in through one traits specialisation
  std::vector<float> storage;
};
struct NoName {  // a pruning policy missing its name
  template <class S, class M>
  void build_mask(std::span<const S>, std::size_t, M&, const dsd::PruneInfo&) const {}
};
struct Custom {
  static constexpr std::string_view name = "custom";
  template <class S, class M>
  void build_mask(std::span<const S> w, std::size_t k, M& m, const dsd::PruneInfo&) const {
    dsd::prune_lowest(w.size(), k, m, [&](std::size_t i) { return w[i]; });
  }
};
}  // namespace

template <>
struct dsd::tensor_traits<UserTensor> {
  using scalar_type = float;
  static float* data(UserTensor& t) { return t.storage.data(); }
  static const float* data(const UserTensor& t) { return t.storage.data(); }
  static std::size_t size(const UserTensor& t) { return t.storage.size(); }
};

static_assert(dsd::parameter_tensor<std::vector<float>>);
static_assert(dsd::parameter_tensor<std::vector<double>>);
static_assert(dsd::parameter_tensor<std::span<float>>);
static_assert(dsd::parameter_tensor<dsd::raw_tensor<double>>);
static_assert(dsd::parameter_tensor<UserTensor>);
static_assert(!dsd::parameter_tensor<std::vector<int>>);
static_assert(!dsd::parameter_tensor<std::list<float>>);
static_assert(
    !dsd::parameter_tensor<std::span<const float>>);  // read-only: a gradient, not a weight
static_assert(dsd::readable_tensor<std::span<const float>>);
static_assert(!dsd::parameter_tensor<std::array<float, 4>>);  // no traits specialisation
static_assert(dsd::is_view_v<std::span<float>> && !dsd::is_view_v<std::vector<float>>);

static_assert(dsd::mask_storage<dsd::BitMask> && dsd::mask_storage<dsd::ByteMask>);
static_assert(!dsd::mask_storage<std::vector<bool>>);

static_assert(dsd::pruning_policy<dsd::KeepmaxCut, float>);
static_assert(dsd::pruning_policy<dsd::RandomCut, double, dsd::ByteMask>);
static_assert(dsd::pruning_policy<dsd::NMCut<2, 4>, float>);
static_assert(dsd::pruning_policy<Custom, float>);
static_assert(!dsd::pruning_policy<NoName, float>);

using Layer = dsd::Masked<std::vector<float>>;
static_assert(dsd::masked_parameter<Layer> && !dsd::masked_parameter<std::vector<float>>);
static_assert(dsd::masked_optimizer<dsd::Sgd, Layer>);
static_assert(dsd::masked_optimizer<dsd::MomentumSgd, Layer>);
static_assert(dsd::masked_optimizer<dsd::Nesterov, Layer>);
static_assert(dsd::masked_optimizer<dsd::Adam, Layer>);
static_assert(dsd::masked_optimizer<dsd::AdamW, Layer>);
static_assert(!dsd::masked_optimizer<dsd::UniformSparsity, Layer>);

static_assert(dsd::layer_collection<std::tuple<Layer&, dsd::Masked<std::span<double>>&>>);
static_assert(dsd::layer_collection<std::vector<Layer>>);
static_assert(!dsd::layer_collection<std::vector<float>>);
static_assert(dsd::threshold_policy<dsd::UniformSparsity, std::vector<Layer>>);
static_assert(dsd::threshold_policy<dsd::GlobalSparsity, std::vector<Layer>>);
static_assert(dsd::threshold_policy<dsd::LayerSparsity, std::tuple<Layer&>>);
static_assert(!dsd::threshold_policy<dsd::KeepmaxCut, std::vector<Layer>>);

// Wrapping a temporary owning tensor would dangle, so it does not compile.
static_assert(!std::is_constructible_v<Layer, std::vector<float>&&>);
static_assert(std::is_constructible_v<Layer, std::vector<float>&>);
// Move-only: an implicit copy would share the weights but not the mask (duplicate() is explicit).
static_assert(!std::is_copy_constructible_v<Layer> && std::is_nothrow_move_assignable_v<Layer>);

TEST_CASE("user tensor types plug in through tensor_traits") {
  UserTensor t{{1.0f, -2.0f, 0.5f, 3.0f}};
  dsd::Masked<UserTensor> layer(t, "user");
  dsd::prune(layer, 0.5);
  CHECK(t.storage == std::vector<float>{0.0f, -2.0f, 0.0f, 3.0f});
  dsd::prune(layer, 0.25, Custom{});  // prunes the most negative weight
  CHECK(t.storage == std::vector<float>{0.0f, 0.0f, 0.0f, 3.0f});
}
