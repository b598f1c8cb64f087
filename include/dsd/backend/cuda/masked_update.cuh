#pragma once
/// \file
/// Fused masked updates on the GPU: the same rules as dsd's CPU optimizers (PyTorch's SGD with
/// momentum / Nesterov and Adam/AdamW), one pass over device memory, with the BitMask words
/// (64 weights per word, bit i % 64 of word i / 64) read once per 64 weights. Pruned weights and
/// their state are written as exactly zero.

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "dsd/backend/cuda/error.cuh"
#include "dsd/config.hpp"

namespace dsd::cuda {

/// A launch target: the stream the kernels are queued on (the default stream unless given).
struct Stream {
  cudaStream_t stream = nullptr;
};

/// Hyper-parameters of the momentum family (`nesterov` selects the Nesterov step).
struct MomentumParams {
  double lr = 0.01, momentum = 0.9, weight_decay = 0.0;
  bool nesterov = false;
};

/// Hyper-parameters of Adam (`decoupled` = AdamW); `step` is the 1-based step number.
struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;
  long long step = 1;
};

namespace kernels {

DSD_HOST_DEVICE bool kept(const std::uint64_t* words, std::size_t i) {
  return (words[i >> 6] >> (i & 63)) & 1u;
}

template <class S>
__global__ void enforce(S* w, const std::uint64_t* words, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    if (!kept(words, i)) w[i] = S(0);
}

template <class S>
__global__ void momentum(S* w, const S* g, S* v, const std::uint64_t* words, std::size_t n, S lr,
                         S mu, S wd, bool nesterov) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const bool keep = kept(words, i);
    const S gi = g[i] + wd * w[i];
    const S vi = mu * v[i] + gi;
    const S wi = w[i] - lr * (nesterov ? gi + mu * vi : vi);
    v[i] = keep ? vi : S(0);
    w[i] = keep ? wi : S(0);
  }
}

template <class S>
__global__ void adam(S* w, const S* g, S* m, S* v, const std::uint64_t* words, std::size_t n,
                     S step, S b1, S b2, S inv_sqrt_c2, S eps, S wd, S decay, bool decoupled) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const bool keep = kept(words, i);
    const S gi = decoupled ? g[i] : g[i] + wd * w[i];
    const S mi = b1 * m[i] + (S(1) - b1) * gi;
    const S vi = b2 * v[i] + (S(1) - b2) * gi * gi;
    const S base = decoupled ? w[i] * decay : w[i];
    const S wi = base - step * mi / (sqrt(vi) * inv_sqrt_c2 + eps);
    m[i] = keep ? mi : S(0);
    v[i] = keep ? vi : S(0);
    w[i] = keep ? wi : S(0);
  }
}

}  // namespace kernels

namespace detail {
inline unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks == 0 ? 1 : blocks) : 65535 * 8);
}
}  // namespace detail

/// W = W ⊙ Mask on device arrays of `n` weights and `(n + 63) / 64` mask words.
template <class S>
void enforce(S* w, const std::uint64_t* words, std::size_t n, Stream s = {}) {
  if (n == 0) return;
  kernels::enforce<<<detail::grid_for(n), 256, 0, s.stream>>>(w, words, n);
  DSD_CUDA_CHECK(cudaGetLastError());
}

/// One fused masked momentum (or Nesterov) SGD step on device arrays.
template <class S>
void momentum_step(S* w, const S* g, S* v, const std::uint64_t* words, std::size_t n,
                   const MomentumParams& p, Stream s = {}) {
  DSD_REQUIRE(std::isfinite(p.lr) && p.lr >= 0 && p.momentum >= 0 && p.momentum < 1,
              invalid_argument, "cuda::momentum_step: lr ", p.lr,
              " must be finite and >= 0, momentum ", p.momentum, " in [0, 1)");
  if (n == 0) return;
  kernels::momentum<<<detail::grid_for(n), 256, 0, s.stream>>>(
      w, g, v, words, n, S(p.lr), S(p.momentum), S(p.weight_decay), p.nesterov);
  DSD_CUDA_CHECK(cudaGetLastError());
}

/// One fused masked Adam/AdamW step on device arrays.
template <class S>
void adam_step(S* w, const S* g, S* m, S* v, const std::uint64_t* words, std::size_t n,
               const AdamParams& p, Stream s = {}) {
  DSD_REQUIRE(
      p.step >= 1 && p.beta1 >= 0 && p.beta1 < 1 && p.beta2 >= 0 && p.beta2 < 1 && p.eps > 0,
      invalid_argument, "cuda::adam_step: step ", p.step,
      " must be >= 1, betas in [0, 1), eps > 0");
  if (n == 0) return;
  const double t = static_cast<double>(p.step);
  kernels::adam<<<detail::grid_for(n), 256, 0, s.stream>>>(
      w, g, m, v, words, n, S(p.lr / (1.0 - std::pow(p.beta1, t))), S(p.beta1), S(p.beta2),
      S(1.0 / std::sqrt(1.0 - std::pow(p.beta2, t))), S(p.eps), S(p.weight_decay),
      S(1.0 - p.lr * p.weight_decay), p.decoupled);
  DSD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace dsd::cuda
