#pragma once
/// \file
/// dsd inside a libtorch trainer (link `dsd::torch`): a `torch::Tensor` as a dsd parameter
/// tensor, a module's weights wrapped by their registered names (a `torch::nn::Module`, or a
/// TorchScript `torch::jit::Module` exported from Python), `torch::optim` state kept masked, and
/// the schedule's learning rate written into a `torch::optim` optimizer.
///
///     auto layers = dsd::torch::wrap(*model);          // "features.0.weight", ... (no biases)
///     torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
///     ...  loss.backward();  opt.step();  layers.enforce(opt);   // weights and state masked
///
/// Inside namespace dsd, `torch` is this namespace: libtorch is always spelled `::torch`.

#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <typeinfo>
#if defined(__GNUG__)
#include <cxxabi.h>

#include <cstdlib>
#endif
#include <utility>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/layers.hpp"
#include "dsd/mask.hpp"
#include "dsd/masked.hpp"
#include "dsd/tensor.hpp"
#if __has_include(<cuda_runtime.h>)
#define DSD_TORCH_DEVICE_VIEW 1
#include "dsd/backend/cuda/device_tensor.cuh"
#endif

namespace dsd::torch {

namespace detail {

template <floating_scalar S>
constexpr ::c10::ScalarType dtype_of = std::is_same_v<S, float> ? ::c10::kFloat : ::c10::kDouble;

/// Throws unless `t` is a defined, dense, non-quantized, contiguous CPU tensor of scalar `S`.
template <floating_scalar S>
void require_viewable(const ::torch::Tensor& t, std::string_view name) {
  DSD_REQUIRE(t.defined(), invalid_argument, "torch tensor \"", name, "\" is undefined");
  DSD_REQUIRE(t.layout() == ::c10::kStrided, invalid_argument, "torch tensor \"", name,
              "\" has layout ", t.layout(), "; dsd views dense (strided) tensors only");
  DSD_REQUIRE(!t.is_quantized(), invalid_argument, "torch tensor \"", name,
              "\" is quantized; dsd views float and double tensors only");
  DSD_REQUIRE(t.device().is_cpu(), invalid_argument, "torch tensor \"", name, "\" is on ",
              t.device().str(),
              "; dsd::torch::tensor_view is for CPU tensors (CUDA tensors: "
              "dsd::torch::device_view with the CUDA backend and a CUDA libtorch)");
  DSD_REQUIRE(t.scalar_type() == dtype_of<S>, invalid_argument, "torch tensor \"", name,
              "\" has dtype ", ::c10::toString(t.scalar_type()), ", expected ",
              ::c10::toString(dtype_of<S>));
  DSD_REQUIRE(t.is_contiguous(), invalid_argument, "torch tensor \"", name,
              "\" is not contiguous; call .contiguous() on the parameter before training");
}

/// The readable name of a dynamic type (demangled where the ABI allows).
inline std::string type_name(const std::type_info& type) {
#if defined(__GNUG__)
  int status = 0;
  char* readable = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  if (status == 0 && readable != nullptr) {
    std::string name(readable);
    std::free(readable);
    return name;
  }
#endif
  return type.name();
}

/// Storage-order shape with the reduction dimension inner: dimension 0 (output channels or
/// features) outer, every other dimension (inputs x kernel) inner.
inline Shape shape_of(const ::torch::Tensor& t) {
  const auto n = static_cast<std::size_t>(t.numel());
  if (t.dim() < 2 || n == 0) return {1, n};
  const auto outer = static_cast<std::size_t>(t.size(0));
  return {outer, n / outer};
}

}  // namespace detail

/// A view of a CPU `torch::Tensor`'s storage as a dsd parameter tensor of scalar `S` (float or
/// double): no copy, the tensor's handle is kept so the storage stays alive. Construction checks
/// dtype, layout, device and contiguity and throws `dsd::error` (invalid_argument) naming the
/// problem; so does every `data()`, because a module moved after wrapping (`module->to(kDouble)`,
/// `->to(kCUDA)`) changes the tensor under the view: that is an error naming the tensor, never a
/// `c10::Error` or a device pointer handed to host code.
template <floating_scalar S>
class tensor_view {
 public:
  explicit tensor_view(::torch::Tensor t, std::string_view name = "tensor")
      : t_(std::move(t)), name_(name) {
    detail::require_viewable<S>(t_, name_);
  }
  /// The viewed tensor (a shallow handle sharing storage).
  [[nodiscard]] const ::torch::Tensor& tensor() const noexcept { return t_; }
  [[nodiscard]] S* data() const {
    detail::require_viewable<S>(t_, name_);
    return t_.data_ptr<S>();
  }
  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(t_.numel()); }
  [[nodiscard]] Shape shape() const { return detail::shape_of(t_); }

 private:
  ::torch::Tensor t_;
  std::string name_;
};

#if defined(DSD_TORCH_DEVICE_VIEW)
/// A CUDA `torch::Tensor` (from a CUDA build of libtorch) as a device tensor of the CUDA backend
/// (available where the CUDA headers are on the include path, e.g. linking `dsd::cuda`): a
/// `Masked<cuda::device_tensor<S>>` in a .cu translation unit (<dsd/backend/cuda.cuh>) then
/// prunes and steps it on the GPU. The view itself is host code, so it compiles with the host
/// compiler, which libtorch's headers need (nvcc 13 in C++20 mode rejects libtorch 1.13's). `stream`
/// is where dsd's kernels run: pass libtorch's current stream (`c10::cuda::getCurrentCUDAStream()`).
/// It has no default: the legacy default stream would serialise against, or race with, the
/// non-blocking streams libtorch's kernels run on.
/// dsd's suite checks the refusals; the GPU path needs a CUDA libtorch, which Debian lacks.
template <floating_scalar S>
[[nodiscard]] cuda::device_tensor<S> device_view(const ::torch::Tensor& t, std::string_view name,
                                                 cudaStream_t stream) {
  DSD_REQUIRE(t.defined() && t.is_cuda(), invalid_argument, "torch tensor \"", name,
              "\" is not a CUDA tensor; use tensor_view for CPU tensors");
  DSD_REQUIRE(t.layout() == ::c10::kStrided && !t.is_quantized() && t.is_contiguous(),
              invalid_argument, "torch tensor \"", name,
              "\" must be dense, not quantized, and contiguous");
  DSD_REQUIRE(t.scalar_type() == detail::dtype_of<S>, invalid_argument, "torch tensor \"", name,
              "\" has dtype ", ::c10::toString(t.scalar_type()), ", expected ",
              ::c10::toString(detail::dtype_of<S>));
  return {t.data_ptr<S>(), static_cast<std::size_t>(t.numel()), detail::shape_of(t), stream};
}
#endif

/// Which parameters of a module `wrap` prunes. The default takes weights, not biases or
/// normalisation parameters (the paper's ResNet recipe keeps BatchNorm dense): tensors of two or
/// more dimensions whose last name component starts with "weight" (`fc1.weight`,
/// `lstm.weight_ih_l0`). Replace `select` to choose otherwise.
struct WrapOptions {
  std::function<bool(const std::string& name, const ::torch::Tensor& parameter)> select =
      [](const std::string& name, const ::torch::Tensor& p) {
        const auto dot = name.rfind('.');
        const std::string_view last =
            std::string_view(name).substr(dot == std::string::npos ? 0 : dot + 1);
        return p.dim() >= 2 && last.starts_with("weight");
      };
  /// Names never wrapped (e.g. the first convolution); each must be a parameter of the module.
  std::vector<std::string> exclude{};
};

/// The wrapped weights of a module: a range of `Masked<tensor_view<S>>` (a dsd layer collection,
/// so `dsd::prune`, `dsd::run`, checkpoints take it), plus what a torch loop needs around
/// `optimizer.step()`.
template <floating_scalar S = float>
class Layers {
 public:
  using layer_type = Masked<tensor_view<S>>;

  Layers() = default;
  /// Wraps `parameters` (name, tensor) in this order. A tensor listed under several names (a
  /// tied weight: an embedding shared with the decoder) is wrapped once, under its first name,
  /// the others kept as its `aliases`; two tensors that overlap in one storage without being the
  /// same tensor are refused, naming both (their masks would disagree and zero each other).
  explicit Layers(const std::vector<std::pair<std::string, ::torch::Tensor>>& parameters) {
    layers_.reserve(parameters.size());
    for (const auto& [name, p] : parameters) {
      const tensor_view<S> view(p, name);
      const std::size_t same = alias_of(p, name);
      if (same < layers_.size()) {
        aliases_[same].push_back(name);
        continue;
      }
      layers_.emplace_back(view, name);
      parameters_.push_back(p);
      aliases_.emplace_back();
    }
  }

  [[nodiscard]] auto begin() noexcept { return layers_.begin(); }
  [[nodiscard]] auto end() noexcept { return layers_.end(); }
  [[nodiscard]] auto begin() const noexcept { return layers_.begin(); }
  [[nodiscard]] auto end() const noexcept { return layers_.end(); }
  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  [[nodiscard]] layer_type& operator[](std::size_t i) { return layers_[i]; }
  [[nodiscard]] const layer_type& operator[](std::size_t i) const { return layers_[i]; }
  /// The torch parameter behind layer `i` (a handle sharing its storage).
  [[nodiscard]] const ::torch::Tensor& parameter(std::size_t i) const { return parameters_[i]; }
  /// The other names under which the module holds layer `i`'s tensor (tied weights).
  [[nodiscard]] const std::vector<std::string>& aliases(std::size_t i) const { return aliases_[i]; }
  /// The layer called `name` (or holding it as an alias); throws listing the wrapped names if
  /// there is none.
  [[nodiscard]] layer_type& at(std::string_view name) {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (layers_[i].name() == name ||
          std::find(aliases_[i].begin(), aliases_[i].end(), name) != aliases_[i].end())
        return layers_[i];
    std::string names;
    for (const auto& l : layers_) names += (names.empty() ? "" : ", ") + l.name();
    DSD_THROW(invalid_argument, "no wrapped layer \"", name, "\"; wrapped: ", names);
  }

  /// Zeroes the gradient of pruned weights (call between `backward()` and `step()` so weight
  /// decay and momentum see a masked gradient; `enforce` after the step is what guarantees
  /// zeros). Every gradient is checked before any is changed.
  void mask_grads() {
    std::vector<std::pair<std::size_t, ::torch::Tensor>> grads;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const ::torch::Tensor& g = parameter(i).grad();
      if (!g.defined()) continue;
      require_fits(layers_[i], g, "gradient");
      grads.emplace_back(i, g);
    }
    for (const auto& [i, g] : grads) zero_pruned(layers_[i], g, "gradient");
  }

  /// Zeroes pruned weights (after a step of any optimizer).
  void enforce() {
    for (auto& l : layers_) l.enforce();
  }

  /// Zeroes pruned weights and their entries in `opt`'s state: SGD's momentum buffer, Adam's and
  /// AdamW's `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq`), RMSprop's buffers, Adagrad's sum.
  /// Call after every `opt.step()`; pruned weights and their state are then exactly zero, and
  /// after `dsd::redense` they restart from zero. An optimizer with another state type is an
  /// error naming it, and so is one that holds none of the wrapped tensors (built over another
  /// copy of the model: its state would silently stay unmasked). One that holds some of them (a
  /// trainer with an optimizer per group of layers calls enforce for each) masks those.
  void enforce(::torch::optim::Optimizer& opt) {
    std::vector<const void*> held;
    for (const auto& group : opt.param_groups())
      for (const auto& p : group.params()) held.push_back(p.unsafeGetTensorImpl());
    std::sort(held.begin(), held.end());
    const bool any = std::any_of(parameters_.begin(), parameters_.end(), [&](const ::torch::Tensor& p) {
      return std::binary_search(held.begin(), held.end(), static_cast<const void*>(p.unsafeGetTensorImpl()));
    });
    DSD_REQUIRE(layers_.empty() || any, invalid_argument, "enforce: the optimizer holds none of the ",
                layers_.size(), " wrapped tensors (the first: \"", layers_.front().name(),
                "\"); build it over the wrapped module's own parameters");
    std::vector<std::pair<std::size_t, ::torch::Tensor>> buffers;  // all checked first
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      (void)layers_[i].weights();  // the parameter itself is still viewable
      const auto it = opt.state().find(::c10::guts::to_string(parameter(i).unsafeGetTensorImpl()));
      if (it == opt.state().end()) continue;  // no step taken for this parameter yet
      for (const ::torch::Tensor& buffer : state_buffers(*it->second, layers_[i].name()))
        if (buffer.defined()) {
          require_fits(layers_[i], buffer, "optimizer state");
          buffers.emplace_back(i, buffer);
        }
    }
    enforce();
    for (const auto& [i, b] : buffers) zero_pruned(layers_[i], b, "optimizer state");
  }

  /// One step of a dsd optimizer (`dsd::MomentumSgd`, `dsd::Adam`, ...) on every wrapped weight
  /// from its `grad()`, mask fused in. Weights without a gradient are skipped, as torch::optim
  /// does. The module's other parameters (biases) still need a torch optimizer. All or nothing:
  /// every weight and gradient is checked (dtype, device, layout, size) before any layer steps,
  /// so a sparse or mistyped gradient changes nothing.
  template <class Optimizer>
  void step(const Optimizer& opt) {
    std::vector<std::pair<std::size_t, tensor_view<S>>> grads;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const ::torch::Tensor& g = parameter(i).grad();
      if (!g.defined()) continue;
      (void)layers_[i].weights();
      require_fits(layers_[i], g, "gradient");
      grads.emplace_back(i, tensor_view<S>(g, layers_[i].name() + ".grad"));
    }
    for (auto& [i, g] : grads) opt.step(layers_[i], g);
  }

 private:
  std::vector<layer_type> layers_;
  std::vector<::torch::Tensor> parameters_;  // the same tensors as layers_' views, same order
  std::vector<std::vector<std::string>> aliases_;  // other names of each layer's tensor

  /// The index of the wrapped layer that `p` is (the same tensor, or the same elements of the
  /// same storage), or size() if none; throws if `p` partly overlaps a wrapped tensor.
  std::size_t alias_of(const ::torch::Tensor& p, const std::string& name) const {
    const auto range = [](const ::torch::Tensor& t) {
      const auto* base = static_cast<const char*>(t.storage().data());
      const auto begin = base + t.storage_offset() * static_cast<std::ptrdiff_t>(t.element_size());
      return std::pair{begin, begin + t.numel() * static_cast<std::ptrdiff_t>(t.element_size())};
    };
    const auto [b, e] = range(p);
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      const ::torch::Tensor& q = parameters_[i];
      if (q.unsafeGetTensorImpl() == p.unsafeGetTensorImpl()) return i;
      const auto [qb, qe] = range(q);
      if (qb == b && qe == e) return i;
      DSD_REQUIRE(e <= qb || qe <= b, invalid_argument, "parameters \"", layers_[i].name(),
                  "\" and \"", name, "\" overlap in one storage without being the same tensor; "
                  "their masks would zero each other's kept weights (exclude one of them)");
    }
    return parameters_.size();
  }

  static void require_fits(const layer_type& layer, const ::torch::Tensor& t, const char* what) {
    DSD_REQUIRE(t.defined() && static_cast<std::size_t>(t.numel()) == layer.size(), size_mismatch,
                what, " of layer \"", layer.name(), "\" has ", t.numel(), " elements, expected ",
                layer.size());
    detail::require_viewable<S>(t, layer.name() + " " + what);
  }

  static void zero_pruned(const layer_type& layer, const ::torch::Tensor& t, const char* what) {
    require_fits(layer, t, what);
    dsd::detail::zero_where_pruned(layer.mask(), t.data_ptr<S>());
  }

  static std::vector<::torch::Tensor> state_buffers(::torch::optim::OptimizerParamState& s,
                                                    const std::string& layer) {
    namespace optim = ::torch::optim;
    if (auto* p = dynamic_cast<optim::SGDParamState*>(&s)) return {p->momentum_buffer()};
    if (auto* p = dynamic_cast<optim::AdamParamState*>(&s))
      return {p->exp_avg(), p->exp_avg_sq(), p->max_exp_avg_sq()};
    if (auto* p = dynamic_cast<optim::AdamWParamState*>(&s))
      return {p->exp_avg(), p->exp_avg_sq(), p->max_exp_avg_sq()};
    if (auto* p = dynamic_cast<optim::RMSpropParamState*>(&s))
      return {p->square_avg(), p->momentum_buffer(), p->grad_avg()};
    if (auto* p = dynamic_cast<optim::AdagradParamState*>(&s)) return {p->sum()};
    DSD_THROW(invalid_argument, "cannot mask the optimizer state of layer \"", layer,
             "\": state type ", detail::type_name(typeid(s)),
             " is not SGD, Adam, AdamW, RMSprop or Adagrad; call enforce() without the optimizer "
             "and mask its buffers yourself");
  }
};

namespace detail {
/// What every `wrap` does with a module's parameters `named` (name, tensor), in order.
template <floating_scalar S>
Layers<S> wrap_named(const std::vector<std::pair<std::string, ::torch::Tensor>>& named,
                     const WrapOptions& options) {
  const auto has = [&](const std::string& name) {
    return std::any_of(named.begin(), named.end(), [&](const auto& item) { return item.first == name; });
  };
  for (const auto& name : options.exclude) {
    std::string names;
    for (const auto& item : named) names += (names.empty() ? "" : ", ") + item.first;
    DSD_REQUIRE(has(name), invalid_argument, "exclude: \"", name,
                "\" is not a parameter of the module; parameters: ", names);
  }
  // A tied tensor excluded under any of its names is excluded under all of them.
  std::vector<const void*> excluded_impls;
  for (const auto& [name, p] : named)
    if (std::find(options.exclude.begin(), options.exclude.end(), name) != options.exclude.end())
      excluded_impls.push_back(p.unsafeGetTensorImpl());
  std::vector<std::pair<std::string, ::torch::Tensor>> chosen;
  for (const auto& [name, p] : named) {
    const bool excluded = std::find(excluded_impls.begin(), excluded_impls.end(),
                                    p.unsafeGetTensorImpl()) != excluded_impls.end();
    if (!excluded && options.select(name, p)) chosen.emplace_back(name, p);
  }
  DSD_REQUIRE(!chosen.empty(), invalid_argument, "wrap: no parameter of the module was selected");
  return Layers<S>(chosen);
}
}  // namespace detail

/// Wraps the weights of `module` chosen by `options`, by their registered names
/// (`features.0.weight`), in registration order. A tied weight is wrapped once under its first
/// name (`Layers::aliases` gives the others; excluding any of its names excludes it). Throws if
/// an `exclude` name is not a parameter of the module, if nothing is selected, if a selected
/// tensor cannot be viewed (dtype, device, layout, contiguity), or if two selected tensors
/// partly overlap.
template <floating_scalar S = float>
[[nodiscard]] Layers<S> wrap(::torch::nn::Module& module, const WrapOptions& options = {}) {
  std::vector<std::pair<std::string, ::torch::Tensor>> named;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) named.emplace_back(item.key(), item.value());
  return detail::wrap_named<S>(named, options);
}

/// As above, for a TorchScript module (`torch::jit::load(path)`: scripted or traced in Python,
/// e.g. a torchvision model): its parameters under the names Python gave them
/// (`layer1.0.conv1.weight`), the same default selection and exclusions; `enforce(optimizer)`
/// and `step` work as for a `torch::nn::Module`, with the optimizer built over
/// `unique_parameters(module)` (not `module.parameters()`, which repeats tied tensors).
template <floating_scalar S = float>
[[nodiscard]] Layers<S> wrap(::torch::jit::Module& module, const WrapOptions& options = {}) {
  std::vector<std::pair<std::string, ::torch::Tensor>> named;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) named.emplace_back(item.name, item.value);
  return detail::wrap_named<S>(named, options);
}

/// The parameters of a TorchScript module, each tensor once, in order: for its optimizer.
/// `torch::jit::Module::parameters()` lists a tied tensor under each of its names (Python's does
/// not), and an optimizer built over that list steps it twice.
inline std::vector<::torch::Tensor> unique_parameters(const ::torch::jit::Module& module) {
  std::vector<::torch::Tensor> out;
  for (const auto& p : module.parameters())
    if (std::none_of(out.begin(), out.end(), [&](const ::torch::Tensor& q) { return q.is_same(p); }))
      out.push_back(p);
  return out;
}

/// As above, for a module held by `torch::nn::ModuleHolder` (`LeNet5 model; wrap(model)`).
template <floating_scalar S = float, class M>
[[nodiscard]] Layers<S> wrap(::torch::nn::ModuleHolder<M>& module, const WrapOptions& options = {}) {
  return wrap<S>(*module, options);
}

/// Writes `lr` into every param group of `opt`.
inline void set_lr(::torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

/// For `Callbacks::set_lr`: the schedule's lr of every epoch (a tenth when re-densing) goes into
/// every param group of `opt`, which must outlive the run.
[[nodiscard]] inline std::function<void(double)> lr_setter(::torch::optim::Optimizer& opt) {
  return [&opt](double lr) { set_lr(opt, lr); };
}

}  // namespace dsd::torch

/// `tensor_view` is a dsd parameter tensor.
template <dsd::floating_scalar S>
struct dsd::tensor_traits<dsd::torch::tensor_view<S>> {
  using scalar_type = S;
  static S* data(dsd::torch::tensor_view<S>& t) { return t.data(); }
  static const S* data(const dsd::torch::tensor_view<S>& t) { return t.data(); }
  static std::size_t size(const dsd::torch::tensor_view<S>& t) { return t.size(); }
  static Shape shape(const dsd::torch::tensor_view<S>& t) { return t.shape(); }
  static constexpr bool is_view = true;
};
