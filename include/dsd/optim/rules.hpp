#pragma once
/// \file
/// The masked update rules, one element at a time, as host-device code: the CPU optimizers'
/// loops and the CUDA kernels call the same functions, so the GPU differs from the tested CPU
/// path only in how it iterates (and in the FMA contraction nvcc applies).

#include <cmath>

#include "dsd/config.hpp"
#include "dsd/mask.hpp"

namespace dsd::detail {

/// SGD with L2 weight decay: w - lr (g + wd w).
template <class S>
DSD_HOST_DEVICE S sgd_rule(S w, S g, S lr, S wd) noexcept {
  return w - lr * (g + wd * w);
}

/// Heavy-ball or Nesterov momentum (PyTorch's rules): v <- mu v + (g + wd w); the step is v, or
/// (g + wd w) + mu v. Updates `w` and `v` in place, both zero where pruned.
template <bool Nesterov, class S>
DSD_HOST_DEVICE void momentum_rule(bool keep, S& w, S g, S& v, S lr, S mu, S wd) noexcept {
  const S gi = g + wd * w;
  const S vi = mu * v + gi;
  const S wi = w - lr * (Nesterov ? gi + mu * vi : vi);
  v = kept_or_zero(keep, vi);
  w = kept_or_zero(keep, wi);
}

/// Per-step constants of Adam: lr / (1 - beta1^t), 1 / sqrt(1 - beta2^t), 1 - lr wd.
template <class S>
struct AdamScalars {
  S b1, b2, step, inv_sqrt_c2, eps, wd, decay;
};

template <class S>
AdamScalars<S> adam_scalars(double lr, double beta1, double beta2, double eps, double wd,
                            double t) {
  return {static_cast<S>(beta1),
          static_cast<S>(beta2),
          static_cast<S>(lr / (1.0 - std::pow(beta1, t))),
          static_cast<S>(1.0 / std::sqrt(1.0 - std::pow(beta2, t))),
          static_cast<S>(eps),
          static_cast<S>(wd),
          static_cast<S>(1.0 - lr * wd)};
}

/// Adam (L2 decay in the gradient) or AdamW (`Decoupled`: decay applied to the weight).
template <bool Decoupled, class S>
DSD_HOST_DEVICE void adam_rule(bool keep, S& w, S g, S& m, S& v, const AdamScalars<S>& c) noexcept {
  using std::sqrt;
  const S gi = Decoupled ? g : g + c.wd * w;
  const S mi = c.b1 * m + (S(1) - c.b1) * gi;
  const S vi = c.b2 * v + (S(1) - c.b2) * gi * gi;
  const S base = Decoupled ? w * c.decay : w;
  const S wi = base - c.step * mi / (sqrt(vi) * c.inv_sqrt_c2 + c.eps);
  m = kept_or_zero(keep, mi);
  v = kept_or_zero(keep, vi);
  w = kept_or_zero(keep, wi);
}

}  // namespace dsd::detail
