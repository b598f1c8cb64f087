#pragma once
/// \file
/// The masked-optimizer contract and the checks every optimizer step shares.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/masked.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

/// An optimizer that updates a `Masked` parameter in place from a gradient, with the mask fused
/// into the update so pruned weights (and their state) stay exactly zero.
template <class O, class L, class G = std::vector<typename std::remove_cvref_t<L>::scalar_type>>
concept masked_optimizer = masked_parameter<L> && readable_tensor<G> &&
    requires(const O& o, L& layer, const G& grad) {
  { O::name } -> std::convertible_to<std::string_view>;
  o.step(layer, grad);
};

namespace detail {

/// Validates a step's inputs and returns the gradient as a span over the layer's scalar type.
template <masked_parameter L, readable_tensor G>
std::span<const typename L::scalar_type> checked_grad(const L& layer, const G& grad, double lr,
                                                      std::string_view optimizer) {
  static_assert(std::is_same_v<scalar_t<G>, typename L::scalar_type>,
                "dsd: the gradient must have the same scalar type as the parameter");
  const auto g = as_const_span(grad);
  DSD_REQUIRE(g.size() == layer.size(), size_mismatch, optimizer, ": gradient of ", g.size(),
              " elements for layer \"", layer.name(), "\" of ", layer.size(), " weights");
  DSD_REQUIRE(std::isfinite(lr) && lr >= 0.0, invalid_argument, optimizer, ": learning rate ", lr,
              " must be finite and >= 0");
  return g;
}

/// Weight decay must be finite and >= 0 (a negative decay would grow every weight).
inline void check_weight_decay(double weight_decay, std::string_view optimizer) {
  DSD_REQUIRE(std::isfinite(weight_decay) && weight_decay >= 0.0, invalid_argument, optimizer,
              ": weight decay ", weight_decay, " must be finite and >= 0");
}

/// Makes `buf` a zeroed buffer of `n` entries unless it already has that size.
template <class S>
S* state_buffer(std::vector<S>& buf, std::size_t n) {
  if (buf.size() != n) buf.assign(n, S{0});
  return buf.data();
}

}  // namespace detail
}  // namespace dsd
