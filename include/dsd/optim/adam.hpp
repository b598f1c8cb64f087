#pragma once
/// \file
/// Masked Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay).

#include <cmath>
#include <cstddef>
#include <string_view>

#include "dsd/optim/optimizer.hpp"
#include "dsd/optim/rules.hpp"

namespace dsd {

namespace detail {
template <bool Decoupled, masked_parameter L, readable_tensor G>
void adam_step(L& layer, const G& grad, double lr, double beta1, double beta2, double eps,
               double weight_decay, std::string_view name) {
  using S = typename L::scalar_type;
  DSD_REQUIRE(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0, invalid_argument, name,
              ": betas (", beta1, ", ", beta2, ") must lie in [0, 1)");
  DSD_REQUIRE(eps > 0.0, invalid_argument, name, ": eps ", eps, " must be > 0");
  const S* g = checked_grad(layer, grad, lr, name).data();
  check_weight_decay(weight_decay, name);
  S* w = layer.weights().data();
  S* m = state_buffer(layer.state().first, layer.size());
  S* v = state_buffer(layer.state().second, layer.size());
  const auto t = static_cast<double>(++layer.state().step);
  const AdamScalars<S> c = adam_scalars<S>(lr, beta1, beta2, eps, weight_decay, t);
  for_each_masked(layer.mask(), [=](std::size_t i, bool keep) noexcept {
    adam_rule<Decoupled>(keep, w[i], g[i], m[i], v[i], c);
  });
}
}  // namespace detail

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient; moments are zero where pruned.
struct Adam {
  static constexpr std::string_view name = "adam";
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;

  template <masked_parameter L, readable_tensor G>
  void step(L& layer, const G& grad) const {
    detail::adam_step<false>(layer, grad, lr, beta1, beta2, eps, weight_decay, name);
  }
};

/// AdamW (Loshchilov & Hutter): weight decay applied to the weights, not through the moments.
struct AdamW {
  static constexpr std::string_view name = "adamw";
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;

  template <masked_parameter L, readable_tensor G>
  void step(L& layer, const G& grad) const {
    detail::adam_step<true>(layer, grad, lr, beta1, beta2, eps, weight_decay, name);
  }
};

}  // namespace dsd
