#pragma once
// An MLP trained on the GPU: cuBLAS for the dense products, dsd's device layers for the weights,
// cuSPARSE (dsd::cuda::SparseLinear) for a pruned layer's products where a step's products
// measure faster there (timed once per pattern, printed).
// The same interface as experiments::Net, so the shared driver (trainer.hpp) runs it unchanged, and
// the same parameter names, shapes and initialisation (Glorot uniform from one mt19937_64 stream
// in layer order, zero biases), so a seed gives the CPU trainer's starting point.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <iostream>
#include <cstdint>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <memory>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "text.hpp"
#include "fashion_mnist.hpp"

namespace experiments {

namespace kernels {
__global__ void add_bias_relu(float* y, const float* b, std::size_t batch, std::size_t n, bool relu) {
  for (std::size_t i = dsd::cuda::global_thread(); i < batch * n; i += dsd::cuda::global_threads()) {
    const float v = y[i] + b[i % n];
    y[i] = relu && v < 0.0f ? 0.0f : v;
  }
}
// dx *= (x > 0): the ReLU's backward, given its output x.
__global__ void relu_backward(float* dx, const float* x, std::size_t count) {
  for (std::size_t i = dsd::cuda::global_thread(); i < count; i += dsd::cuda::global_threads())
    if (x[i] <= 0.0f) dx[i] = 0.0f;
}
// db[j] = sum over the batch of dy[., j].
__global__ void bias_grad(const float* dy, float* db, std::size_t batch, std::size_t n) {
  for (std::size_t j = dsd::cuda::global_thread(); j < n; j += dsd::cuda::global_threads()) {
    float s = 0;
    for (std::size_t b = 0; b < batch; ++b) s += dy[b * n + j];
    db[j] = s;
  }
}
// Softmax cross-entropy per sample: d(mean loss)/d(logits) and the summed loss.
__global__ void softmax_xent(const float* z, const std::uint8_t* labels, std::size_t batch,
                             float* dz, float* loss) {
  constexpr int classes = 10;
  for (std::size_t i = dsd::cuda::global_thread(); i < batch; i += dsd::cuda::global_threads()) {
    const float* zi = z + i * classes;
    float zmax = zi[0];
    for (int c = 1; c < classes; ++c) zmax = fmaxf(zmax, zi[c]);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += exp(double(zi[c] - zmax));
    for (int c = 0; c < classes; ++c) {
      const double p = exp(double(zi[c] - zmax)) / sum;
      dz[i * classes + c] = static_cast<float>((p - (c == labels[i] ? 1.0 : 0.0)) / double(batch));
    }
    atomicAdd(loss, static_cast<float>(log(sum) - double(zi[labels[i]] - zmax)));
  }
}
__global__ void count_correct(const float* z, const std::uint8_t* labels, std::size_t n,
                              unsigned long long* correct) {
  for (std::size_t i = dsd::cuda::global_thread(); i < n; i += dsd::cuda::global_threads()) {
    int best = 0;
    for (int c = 1; c < 10; ++c)
      if (z[i * 10 + c] > z[i * 10 + best]) best = c;
    if (best == labels[i]) atomicAdd(correct, 1ull);
  }
}
}  // namespace kernels

class CudaMlp {
 public:
  using Param = dsd::cuda::DeviceMasked<float>;
  static constexpr std::size_t classes = 10;

  CudaMlp(const std::vector<std::size_t>& hidden, std::size_t batch, std::size_t eval_batch)
      : batch_(batch), eval_batch_(eval_batch) {
    dsd::cuda::require_device();
    std::vector<std::size_t> widths = {fashion::Split::pixels};
    widths.insert(widths.end(), hidden.begin(), hidden.end());
    widths.push_back(classes);
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
      const std::string name = "fc" + std::to_string(l + 1);
      layers_.push_back({widths[l], widths[l + 1]});
      tensors_.push_back(std::make_unique<Tensor>(name, widths[l + 1] * widths[l],
                                                  dsd::Shape{widths[l + 1], widths[l]}, true));
      tensors_.push_back(std::make_unique<Tensor>(name + ".bias", widths[l + 1],
                                                  dsd::Shape{1, widths[l + 1]}, false));
    }
    for (std::size_t l = 0; l < widths.size(); ++l) {
      act_.emplace_back(std::max(batch_, eval_batch_) * widths[l]);
      grad_act_.emplace_back(batch_ * widths[l]);
    }
    labels_ = dsd::cuda::DeviceBuffer<std::uint8_t>(std::max(batch_, eval_batch_));
    scalars_ = dsd::cuda::DeviceBuffer<unsigned long long>(1);
    loss_ = dsd::cuda::DeviceBuffer<float>(1);
    wrap();
  }

  void exclude(const std::vector<std::string>& names) {
    for (const auto& n : names) {
      if (n.empty()) continue;
      const auto it = std::find_if(tensors_.begin(), tensors_.end(), [&](const auto& t) { return t->name == n; });
      if (it == tensors_.end()) {
        std::string known;
        for (const auto& t : tensors_) known += (known.empty() ? "" : ", ") + t->name;
        DSD_THROW(invalid_argument, "--exclude: no parameter named \"", n, "\" (this network has ", known, ")");
      }
      (*it)->prunable = false;
    }
    wrap();
  }

  /// Fresh weights for `seed` (the CPU trainer's initialisation); masks and state are reset.
  void init(std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      Tensor& w = *tensors_[2 * l];
      std::vector<float> host(w.value.size());
      const double limit = std::sqrt(6.0 / double(layers_[l].in + layers_[l].out));
      for (auto& x : host)
        x = static_cast<float>((static_cast<double>(gen() >> 11) * 0x1p-53 * 2.0 - 1.0) * limit);
      w.value.upload(host);
      tensors_[2 * l + 1]->value.zero();
    }
    DSD_CUDA_CHECK(cudaDeviceSynchronize());
    wrap();
  }

  std::span<Param> weights() { return std::span<Param>(params_).first(prunable_); }
  std::span<Param> all() { return params_; }
  std::size_t batch() const { return batch_; }

  std::string describe() const {
    return describe_parameters(std::span<const Param>(params_), prunable_, " (on the GPU)");
  }

  /// Forward + backward on one batch; fills the gradients and returns the mean loss.
  float train_batch(const float* x, const std::uint8_t* y) {
    const std::size_t n = batch_;
    act_[0].copy_from_host(std::span<const float>(x, n * fashion::Split::pixels));
    labels_.copy_from_host(std::span<const std::uint8_t>(y, n));
    forward(n);
    loss_.zero();
    kernels::softmax_xent<<<dsd::cuda::grid_for(n), dsd::cuda::block_size>>>(
        act_.back().data(), labels_.data(), n, grad_act_.back().data(), loss_.data());
    for (std::size_t l = layers_.size(); l-- > 0;) {
      const Layer& L = layers_[l];
      float* dy = grad_act_[l + 1].data();
      const float* xin = act_[l].data();
      float* dw = tensors_[2 * l]->grad.data();
      if (sparse_[l]) {
        sparse_[l]->backward_weights(dy, xin, dw, n);
      } else {  // dW (out x in, row-major) = dyᵀ x
        DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_T, int(L.in), int(L.out), int(n), &one_,
                                     xin, int(L.in), dy, int(L.out), &zero_, dw, int(L.in)));
      }
      kernels::bias_grad<<<dsd::cuda::grid_for(L.out), dsd::cuda::block_size>>>(
          dy, tensors_[2 * l + 1]->grad.data(), n, L.out);
      if (l == 0) continue;
      float* dx = grad_act_[l].data();
      if (sparse_[l]) {
        sparse_[l]->backward_data(dy, dx, n);
      } else {  // dx (batch x in) = dy W
        DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_N, int(L.in), int(n), int(L.out), &one_,
                                     tensors_[2 * l]->value.data(), int(L.in), dy, int(L.out), &zero_, dx,
                                     int(L.in)));
      }
      kernels::relu_backward<<<dsd::cuda::grid_for(n * L.in), dsd::cuda::block_size>>>(dx, act_[l].data(), n * L.in);
    }
    return loss_.download()[0] / static_cast<float>(n);
  }

  /// One masked step of `opt` over every parameter, in one launch; then the sparse layers'
  /// values are gathered from the updated weights.
  template <class Opt>
  void step(const Opt& opt) {
    dsd::cuda::step(opt, params_, grads_);
    for (auto& sp : sparse_)
      if (sp) sp->refresh();
  }

  double accuracy(const fashion::Split& data) {
    DSD_REQUIRE(data.count > 0, invalid_argument,
                "accuracy of an empty split (--validation and --train-limit must be > 0)");
    scalars_.zero();
    for (std::size_t start = 0; start < data.count; start += eval_batch_) {
      const std::size_t n = std::min(eval_batch_, data.count - start);
      act_[0].copy_from_host(std::span<const float>(data.images.data() + start * fashion::Split::pixels,
                                            n * fashion::Split::pixels));
      labels_.copy_from_host(std::span<const std::uint8_t>(data.labels.data() + start, n));
      forward(n);
      kernels::count_correct<<<dsd::cuda::grid_for(n), dsd::cuda::block_size>>>(act_.back().data(), labels_.data(),
                                                                                 n, scalars_.data());
    }
    return static_cast<double>(scalars_.download()[0]) / static_cast<double>(data.count);
  }

  /// Which layers run on cuSPARSE (decided per pattern by timing both products for the
  /// training batch; see dsd::cuda::sparse_forward_pays).
  std::string dispatch() const {
    std::string s;
    for (std::size_t l = 0; l < layers_.size(); ++l)
      s += (s.empty() ? "" : ", ") + tensors_[2 * l]->name + (sparse_[l] ? ": cusparse" : ": cublas");
    return s;
  }

 private:
  struct Tensor {
    std::string name;
    dsd::cuda::DeviceBuffer<float> value, grad;
    dsd::Shape shape;
    bool prunable;
    Tensor(std::string n, std::size_t size, dsd::Shape sh, bool p)
        : name(std::move(n)), value(size), grad(size), shape(sh), prunable(p) {
      grad.zero();
    }
  };
  struct Layer {
    std::size_t in, out;
  };

  // Prunable weights first (the order dsd::run and the checkpoints see), then the rest.
  void wrap() {
    params_.clear();
    grads_.clear();
    order_.clear();
    for (bool prunable : {true, false})
      for (auto& t : tensors_)
        if (t->prunable == prunable) order_.push_back(t.get());
    for (Tensor* t : order_) {
      params_.emplace_back(dsd::cuda::device_tensor<float>{t->value.data(), t->value.size(), t->shape}, t->name);
      grads_.push_back({t->grad.data(), t->grad.size()});
    }
    prunable_ = 0;
    for (Tensor* t : order_) prunable_ += t->prunable;
    sparse_.clear();
    sparse_.resize(layers_.size());
    versions_.assign(layers_.size(), ~std::uint64_t{0});
  }

  const Param& param_of(std::size_t layer) const {
    for (const auto& p : params_)
      if (p.name() == tensors_[2 * layer]->name) return p;
    DSD_THROW(invalid_argument, "no parameter for layer ", layer);
  }

  // After a prune or re-dense: a layer whose mask prunes something uses cuSPARSE if that is faster.
  void update_dispatch() {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Param& p = param_of(l);
      if (p.mask_version() == versions_[l]) continue;
      versions_[l] = p.mask_version();
      sparse_[l].reset();
      if (p.stats().kept == p.size()) continue;
      auto sp = std::make_unique<dsd::cuda::SparseLinear<float>>(cusparse_, p);
      const dsd::cuda::StepTimes t = dsd::cuda::time_step_products(*sp, cublas_, p, batch_);
      std::cout << "  " << p.name() << " (" << p.stats().kept << " of " << p.size() << " kept): "
                << (t.sparse_pays() ? "cuSPARSE" : "cuBLAS") << ", products of a step "
                << format("%.1f us cuSPARSE, %.1f us cuBLAS", 1e3 * t.sparse_ms, 1e3 * t.dense_ms)
                << "\n";
      if (t.sparse_pays()) sparse_[l] = std::move(sp);
    }
  }

  void forward(std::size_t n) {
    update_dispatch();
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      const float* x = act_[l].data();
      float* y = act_[l + 1].data();
      if (sparse_[l] && n == batch_) {
        sparse_[l]->forward(x, y, n);
      } else {  // y (batch x out) = x Wᵀ
        DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, int(L.out), int(n), int(L.in), &one_,
                                     tensors_[2 * l]->value.data(), int(L.in), x, int(L.in), &zero_, y,
                                     int(L.out)));
      }
      kernels::add_bias_relu<<<dsd::cuda::grid_for(n * L.out), dsd::cuda::block_size>>>(
          y, tensors_[2 * l + 1]->value.data(), n, L.out, l + 1 < layers_.size());
    }
  }

  std::size_t batch_, eval_batch_;
  std::vector<Layer> layers_;
  std::vector<std::unique_ptr<Tensor>> tensors_;
  std::vector<Tensor*> order_;
  std::vector<Param> params_;
  std::vector<dsd::cuda::device_tensor<const float>> grads_;
  std::size_t prunable_ = 0;
  std::vector<dsd::cuda::DeviceBuffer<float>> act_, grad_act_;
  dsd::cuda::DeviceBuffer<std::uint8_t> labels_;
  dsd::cuda::DeviceBuffer<unsigned long long> scalars_;
  dsd::cuda::DeviceBuffer<float> loss_;
  dsd::cuda::CublasHandle cublas_;
  dsd::cuda::CusparseHandle cusparse_;
  std::vector<std::unique_ptr<dsd::cuda::SparseLinear<float>>> sparse_;
  std::vector<std::uint64_t> versions_;
  float one_ = 1.0f, zero_ = 0.0f;
};

}  // namespace experiments
