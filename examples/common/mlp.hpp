#pragma once
// A fully connected classifier whose forward and backward passes run on oneDNN 2.6 primitives
// (inner product, ReLU eltwise, softmax). Its weights live in plain std::vector<float> buffers,
// the way an existing trainer holds them, and are wrapped as dsd::Masked parameters.

#include <dnnl.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <dsd/dsd.hpp>

#include "fashion_mnist.hpp"

namespace examples {

using Param = dsd::Masked<std::vector<float>>;

/// Glorot-uniform initialisation from raw mt19937_64 bits (the same numbers on every platform).
inline void glorot(std::vector<float>& w, std::size_t fan_in, std::size_t fan_out,
                   std::mt19937_64& gen) {
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  for (auto& x : w)
    x = static_cast<float>((static_cast<double>(gen() >> 11) * 0x1p-53 * 2.0 - 1.0) * limit);
}

/// Softmax cross-entropy on `logits` (batch x classes): writes d(mean loss)/d(logits) and returns
/// the mean loss.
inline float softmax_xent(const float* logits, const std::uint8_t* labels, std::size_t batch,
                          std::size_t classes, float* dlogits) {
  double loss = 0;
  for (std::size_t i = 0; i < batch; ++i) {
    const float* z = logits + i * classes;
    float* d = dlogits + i * classes;
    float zmax = z[0];
    for (std::size_t c = 1; c < classes; ++c) zmax = std::max(zmax, z[c]);
    double sum = 0;
    for (std::size_t c = 0; c < classes; ++c) sum += std::exp(double(z[c] - zmax));
    for (std::size_t c = 0; c < classes; ++c) {
      const double p = std::exp(double(z[c] - zmax)) / sum;
      d[c] = static_cast<float>((p - (c == labels[i] ? 1.0 : 0.0)) / double(batch));
    }
    loss += std::log(sum) - double(z[labels[i]] - zmax);
  }
  return static_cast<float>(loss / double(batch));
}

/// LeNet-300-100 style MLP: 784 -> hidden... -> 10, ReLU between layers.
class Mlp {
 public:
  Mlp(std::vector<std::size_t> hidden, std::size_t batch, std::size_t eval_batch)
      : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_), batch_(batch), eval_batch_(eval_batch) {
    sizes_.push_back(fashion::Split::pixels);
    sizes_.insert(sizes_.end(), hidden.begin(), hidden.end());
    sizes_.push_back(10);
    const std::size_t L = sizes_.size() - 1;
    w_.resize(L), b_.resize(L), gw_.resize(L), gb_.resize(L);
    for (std::size_t l = 0; l < L; ++l) {
      w_[l].resize(sizes_[l + 1] * sizes_[l]);
      gw_[l].resize(w_[l].size());
      b_[l].resize(sizes_[l + 1]);
      gb_[l].resize(b_[l].size());
    }
    for (std::size_t l = 0; l < L; ++l)  // oneDNN's "oi" layout: rows of inputs per output
      params_.emplace_back(w_[l], "fc" + std::to_string(l + 1),
                           dsd::Shape{sizes_[l + 1], sizes_[l]});
    for (std::size_t l = 0; l < L; ++l)
      params_.emplace_back(b_[l], "fc" + std::to_string(l + 1) + ".bias");
    train_ = build(batch_, true);
    eval_ = build(eval_batch_, false);
  }
  Mlp(const Mlp&) = delete;  // the Masked parameters point into this object
  Mlp& operator=(const Mlp&) = delete;

  /// Fresh weights for `seed`; masks and optimizer state are reset.
  void init(std::uint64_t seed) {
    const std::size_t L = w_.size();
    std::mt19937_64 gen(seed);
    for (std::size_t l = 0; l < w_.size(); ++l) {
      glorot(w_[l], sizes_[l], sizes_[l + 1], gen);
      std::fill(b_[l].begin(), b_[l].end(), 0.0f);
      params_[l] = Param(w_[l], params_[l].name(), params_[l].shape());
      params_[L + l] = Param(b_[l], params_[L + l].name());
    }
  }

  /// Prunable parameters (the FC weight matrices), the others (biases, never pruned), and all.
  std::span<Param> weights() { return std::span<Param>(params_).first(w_.size()); }
  std::span<Param> biases() { return std::span<Param>(params_).last(b_.size()); }
  std::span<Param> all() { return params_; }
  const std::vector<float>& weight_grad(std::size_t l) const { return gw_[l]; }
  const std::vector<float>& bias_grad(std::size_t l) const { return gb_[l]; }
  std::size_t batch() const { return batch_; }

  /// Forward + backward on one batch of `batch()` images; fills the gradients, returns the loss.
  float train_batch(const float* x, const std::uint8_t* y) {
    Pass& p = train_;
    forward(p, x);
    const std::size_t L = w_.size();
    const float loss = softmax_xent(p.pre[L - 1].data(), y, batch_, 10, p.dpre[L - 1].data());
    for (std::size_t l = L; l-- > 0;) {
      Layer& k = p.layers[l];
      k.bwd_w.execute(stream_, {{DNNL_ARG_SRC, k.src},
                                {DNNL_ARG_DIFF_DST, k.ddst},
                                {DNNL_ARG_DIFF_WEIGHTS, k.dw},
                                {DNNL_ARG_DIFF_BIAS, k.db}});
      if (l == 0) break;
      k.bwd_d.execute(
          stream_,
          {{DNNL_ARG_DIFF_DST, k.ddst}, {DNNL_ARG_WEIGHTS, k.w}, {DNNL_ARG_DIFF_SRC, k.dsrc}});
      Layer& below = p.layers[l - 1];
      below.relu_bwd.execute(stream_, {{DNNL_ARG_SRC, below.dst},
                                       {DNNL_ARG_DIFF_DST, k.dsrc},
                                       {DNNL_ARG_DIFF_SRC, below.ddst}});
    }
    stream_.wait();
    return loss;
  }

  /// Fraction of `data` classified correctly (in batches of the evaluation size; a last partial
  /// batch is padded and its padding ignored).
  double accuracy(const fashion::Split& data) {
    Pass& p = eval_;
    std::size_t correct = 0;
    std::vector<float> pad(eval_batch_ * fashion::Split::pixels, 0.0f);
    for (std::size_t start = 0; start < data.count; start += eval_batch_) {
      const std::size_t n = std::min(eval_batch_, data.count - start);
      const float* x = data.images.data() + start * fashion::Split::pixels;
      if (n < eval_batch_) {
        std::copy(x, x + n * fashion::Split::pixels, pad.begin());
        x = pad.data();
      }
      forward(p, x);
      const float* z = p.pre.back().data();
      for (std::size_t i = 0; i < n; ++i) {
        const float* row = z + i * 10;
        correct += static_cast<std::size_t>(std::max_element(row, row + 10) - row) ==
                   data.labels[start + i];
      }
    }
    return static_cast<double>(correct) / static_cast<double>(data.count);
  }

 private:
  struct Layer {
    dnnl::memory src, w, b, dst, dsrc, ddst, dw, db, act;
    dnnl::inner_product_forward fwd;
    dnnl::inner_product_backward_data bwd_d;
    dnnl::inner_product_backward_weights bwd_w;
    dnnl::eltwise_forward relu;
    dnnl::eltwise_backward relu_bwd;
  };
  // Buffers and primitives for one batch size; everything is allocated once, here.
  struct Pass {
    std::vector<std::vector<float>> pre, act, dpre, dact;
    std::vector<Layer> layers;
    dnnl::memory input;
  };

  Pass build(std::size_t n, bool training) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const auto prop =
        training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const std::size_t L = w_.size();
    Pass p;
    p.pre.resize(L), p.act.resize(L), p.dpre.resize(L), p.dact.resize(L);
    p.layers.resize(L);
    const auto N = static_cast<dnnl::memory::dim>(n);
    for (std::size_t l = 0; l < L; ++l) {
      const auto in = static_cast<dnnl::memory::dim>(sizes_[l]),
                 out = static_cast<dnnl::memory::dim>(sizes_[l + 1]);
      const dnnl::memory::desc src_md({N, in}, dt::f32, tag::nc), w_md({out, in}, dt::f32, tag::oi),
          b_md({out}, dt::f32, tag::x), dst_md({N, out}, dt::f32, tag::nc);
      p.pre[l].resize(n * sizes_[l + 1]);
      p.act[l].resize(n * sizes_[l + 1]);
      Layer& k = p.layers[l];
      k.src = l == 0 ? dnnl::memory(src_md, eng_, DNNL_MEMORY_NONE) : p.layers[l - 1].act;
      k.w = dnnl::memory(w_md, eng_, w_[l].data());
      k.b = dnnl::memory(b_md, eng_, b_[l].data());
      k.dst = dnnl::memory(dst_md, eng_, p.pre[l].data());
      k.act = dnnl::memory(dst_md, eng_, p.act[l].data());
      const dnnl::inner_product_forward::primitive_desc fwd_pd({prop, src_md, w_md, b_md, dst_md},
                                                               eng_);
      k.fwd = dnnl::inner_product_forward(fwd_pd);
      const dnnl::eltwise_forward::primitive_desc relu_pd(
          {prop, dnnl::algorithm::eltwise_relu, dst_md, 0.0f, 0.0f}, eng_);
      k.relu = dnnl::eltwise_forward(relu_pd);
      if (!training) continue;
      p.dpre[l].resize(n * sizes_[l + 1]);
      p.dact[l].resize(n * sizes_[l]);
      k.ddst = dnnl::memory(dst_md, eng_, p.dpre[l].data());
      k.dsrc = dnnl::memory(src_md, eng_, p.dact[l].data());
      k.dw = dnnl::memory(w_md, eng_, gw_[l].data());
      k.db = dnnl::memory(b_md, eng_, gb_[l].data());
      k.bwd_d = dnnl::inner_product_backward_data(
          dnnl::inner_product_backward_data::primitive_desc({src_md, w_md, dst_md}, eng_, fwd_pd));
      k.bwd_w =
          dnnl::inner_product_backward_weights(dnnl::inner_product_backward_weights::primitive_desc(
              {src_md, w_md, b_md, dst_md}, eng_, fwd_pd));
      k.relu_bwd = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
          {dnnl::algorithm::eltwise_relu, dst_md, dst_md, 0.0f, 0.0f}, eng_, relu_pd));
    }
    p.input = p.layers[0].src;
    return p;
  }

  void forward(Pass& p, const float* x) {
    p.input.set_data_handle(const_cast<float*>(x));
    const std::size_t L = w_.size();
    for (std::size_t l = 0; l < L; ++l) {
      Layer& k = p.layers[l];
      k.fwd.execute(stream_, {{DNNL_ARG_SRC, k.src},
                              {DNNL_ARG_WEIGHTS, k.w},
                              {DNNL_ARG_BIAS, k.b},
                              {DNNL_ARG_DST, k.dst}});
      if (l + 1 < L) k.relu.execute(stream_, {{DNNL_ARG_SRC, k.dst}, {DNNL_ARG_DST, k.act}});
    }
    stream_.wait();
  }

  dnnl::engine eng_;
  dnnl::stream stream_;
  std::size_t batch_, eval_batch_;
  std::vector<std::size_t> sizes_;
  std::vector<std::vector<float>> w_, b_, gw_, gb_;
  std::vector<Param> params_;  // weights of every layer, then biases
  Pass train_, eval_;
};

}  // namespace examples
