#pragma once
/// \file
/// Masked SGD, momentum SGD and Nesterov SGD (PyTorch's update rules), each one fused pass.

#include <cstddef>
#include <string_view>

#include "dsd/optim/optimizer.hpp"
#include "dsd/optim/rules.hpp"

namespace dsd {

/// Plain SGD with L2 weight decay: w <- (w - lr (g + wd w)) ⊙ mask.
struct Sgd {
  static constexpr std::string_view name = "sgd";
  double lr = 0.01;
  double weight_decay = 0.0;

  template <masked_parameter L, readable_tensor G>
  void step(L& layer, const G& grad) const {
    using S = typename L::scalar_type;
    const S* g = detail::checked_grad(layer, grad, lr, name).data();
    detail::check_weight_decay(weight_decay, name);
    S* w = layer.weights().data();
    const S a = static_cast<S>(lr), wd = static_cast<S>(weight_decay);
    detail::for_each_masked(layer.mask(), [=](std::size_t i, bool keep) noexcept {
      w[i] = detail::kept_or_zero(keep, detail::sgd_rule(w[i], g[i], a, wd));
    });
  }
};

namespace detail {
// Momentum and Nesterov share one kernel: v <- mu v + (g + wd w); the step is v, or g' + mu v.
template <bool Nesterov, masked_parameter L, readable_tensor G>
void momentum_step(L& layer, const G& grad, double lr, double momentum, double weight_decay,
                   std::string_view name) {
  using S = typename L::scalar_type;
  DSD_REQUIRE(momentum >= 0.0 && momentum < 1.0, invalid_argument, name, ": momentum ", momentum,
              " is outside [0, 1)");
  const S* g = checked_grad(layer, grad, lr, name).data();
  check_weight_decay(weight_decay, name);
  S* w = layer.weights().data();
  S* v = state_buffer(layer.state().first, layer.size());
  ++layer.state().step;
  const S a = static_cast<S>(lr), mu = static_cast<S>(momentum), wd = static_cast<S>(weight_decay);
  for_each_masked(layer.mask(), [=](std::size_t i, bool keep) noexcept {
    momentum_rule<Nesterov>(keep, w[i], g[i], v[i], a, mu, wd);
  });
}
}  // namespace detail

/// SGD with heavy-ball momentum and L2 weight decay; the momentum buffer is zero where pruned.
struct MomentumSgd {
  static constexpr std::string_view name = "momentum_sgd";
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 0.0;

  template <masked_parameter L, readable_tensor G>
  void step(L& layer, const G& grad) const {
    detail::momentum_step<false>(layer, grad, lr, momentum, weight_decay, name);
  }
};

/// SGD with Nesterov momentum (as in PyTorch's `nesterov=True`) and L2 weight decay.
struct Nesterov {
  static constexpr std::string_view name = "nesterov";
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 0.0;

  template <masked_parameter L, readable_tensor G>
  void step(L& layer, const G& grad) const {
    detail::momentum_step<true>(layer, grad, lr, momentum, weight_decay, name);
  }
};

}  // namespace dsd
