#pragma once
// A small feed-forward network on oneDNN 2.6 primitives, written the way an existing C++ trainer
// holds its model: every weight and bias is a plain std::vector<float> owned by the trainer, and
// each is wrapped once as a dsd::Masked parameter. The layers (inner product, convolution, max
// pooling, ReLU, LSTM) are a list of specs; the network builds their oneDNN primitives twice, for
// the training batch and for the evaluation batch, allocating every buffer up front.

#include <dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <dsd/dsd.hpp>

#include "text.hpp"
#include "fashion_mnist.hpp"

namespace experiments {

using Param = dsd::Masked<std::vector<float>>;

/// Layer specs. Names in checkpoints and --exclude are "fcK", "convK" (K counts from 1 per kind),
/// "lstm.input", "lstm.recurrent", with ".bias" for the biases.
struct Fc {
  int out;
};
struct Conv {
  int out, kernel, pad = 0;
};
struct MaxPool {
  int size;
};
struct Relu {};
/// An LSTM reading the rows of the image (28 steps of 28 pixels); its output is the last hidden
/// state. Gates in oneDNN's order i, f, c~, o; the forget-gate bias starts at 1.
struct Lstm {
  int hidden;
};
using LayerSpec = std::variant<Fc, Conv, MaxPool, Relu, Lstm>;

/// Uniform numbers in [-limit, limit) from raw mt19937_64 bits (the same on every platform).
inline void uniform(std::span<float> w, double limit, std::mt19937_64& gen) {
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
    const float zmax = *std::max_element(z, z + classes);
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

class Net {
 public:
  static constexpr std::size_t classes = 10;

  /// `layers` must end in an Fc with 10 outputs (the logits).
  Net(const std::vector<LayerSpec>& layers, std::size_t batch, std::size_t eval_batch)
      : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_), batch_(batch), eval_batch_(eval_batch) {
    DSD_REQUIRE(!layers.empty() && std::holds_alternative<Fc>(layers.back()) &&
                    std::get<Fc>(layers.back()).out == int(classes),
                invalid_argument, "the last layer must be an Fc with ", classes, " outputs");
    train_ = build(layers, batch_, true);
    eval_ = build(layers, eval_batch_, false);
    wrap();
  }
  Net(const Net&) = delete;  // the Masked parameters point into this object
  Net& operator=(const Net&) = delete;

  /// Keeps the named parameters out of pruning (they still train). Unknown names are an error.
  void exclude(const std::vector<std::string>& names) {
    for (const auto& n : names) {
      if (n.empty()) continue;  // --exclude "" prunes everything
      const auto it = std::find_if(tensors_.begin(), tensors_.end(),
                                   [&](const auto& t) { return t->name == n; });
      if (it == tensors_.end()) {
        std::string known;
        for (const auto& t : tensors_) known += (known.empty() ? "" : ", ") + t->name;
        DSD_THROW(invalid_argument, "--exclude: no parameter named \"", n, "\" (this network has ",
                  known, ")");
      }
      (*it)->prunable = false;
    }
    wrap();
  }

  /// Fresh weights for `seed`; masks and optimizer state are reset.
  void init(std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    for (auto& t : tensors_) t->init(t->value, gen);
    wrap();
  }

  /// The prunable parameters (first in all()), the others, and all; grad(i) belongs to all()[i].
  std::span<Param> weights() { return std::span<Param>(params_).first(prunable_); }
  std::span<Param> others() { return std::span<Param>(params_).subspan(prunable_); }
  std::span<Param> all() { return params_; }
  const std::vector<float>& grad(std::size_t i) const { return order_[i]->grad; }
  /// Writable gradient of all()[i] (for a data-parallel gradient all-reduce before the step).
  std::span<float> mutable_grad(std::size_t i) { return order_[i]->grad; }
  /// Scales every gradient so that their global L2 norm is at most `max_norm` (gradient clipping,
  /// as torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
  double clip_gradients(double max_norm) {
    double squares = 0.0;
    for (const Tensor* t : order_)
      for (float g : t->grad) squares += static_cast<double>(g) * g;
    const double norm = std::sqrt(squares);
    if (norm > max_norm) {
      const auto scale = static_cast<float>(max_norm / norm);
      for (Tensor* t : order_)
        for (float& g : t->grad) g *= scale;
    }
    return norm;
  }
  std::size_t batch() const { return batch_; }

  /// One line per parameter: name, shape, pruned or not.
  std::string describe() const {
    return describe_parameters(std::span<const Param>(params_), prunable_);
  }

  /// Forward + backward on one batch of `batch()` images; fills the gradients, returns the loss.
  float train_batch(const float* x, const std::uint8_t* y) {
    Pass& p = train_;
    forward(p, x);
    const float loss =
        softmax_xent(static_cast<const float*>(p.stages.back().dst.get_data_handle()), y, batch_,
                     classes, static_cast<float*>(p.stages.back().ddst.get_data_handle()));
    for (std::size_t s = p.stages.size(); s-- > 0;) {
      Stage& st = p.stages[s];
      if (st.before_backward) st.before_backward();
      for (auto& c : st.backward) c(stream_);
      if (s > 0)
        for (auto& c : st.backward_input) c(stream_);
    }
    stream_.wait();
    return loss;
  }

  /// Fraction of `data` classified correctly (in batches of the evaluation size; a last partial
  /// batch is padded and its padding ignored).
  double accuracy(const fashion::Split& data) {
    DSD_REQUIRE(data.count > 0, invalid_argument,
                "accuracy of an empty split (--validation and --train-limit must be > 0)");
    Pass& p = eval_;
    std::size_t correct = 0;
    for (std::size_t start = 0; start < data.count; start += eval_batch_) {
      const std::size_t n = std::min(eval_batch_, data.count - start);
      const float* x = data.images.data() + start * fashion::Split::pixels;
      if (n < eval_batch_) {
        std::copy(x, x + n * fashion::Split::pixels, pad_.begin());
        x = pad_.data();
      }
      forward(p, x);
      const auto* z = static_cast<const float*>(p.stages.back().dst.get_data_handle());
      for (std::size_t i = 0; i < n; ++i) {
        const float* row = z + i * classes;
        correct += static_cast<std::size_t>(std::max_element(row, row + classes) - row) ==
                   data.labels[start + i];
      }
    }
    return static_cast<double>(correct) / static_cast<double>(data.count);
  }

 private:
  using dims = dnnl::memory::dims;
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;

  // A trainer-owned parameter: values, gradient, and how to initialise it.
  struct Tensor {
    std::string name;
    std::vector<float> value, grad;
    dsd::Shape shape;
    bool prunable;
    std::function<void(std::vector<float>&, std::mt19937_64&)> init;
  };

  // A primitive with its arguments, bound once.
  struct Call {
    dnnl::primitive prim;
    std::unordered_map<int, dnnl::memory> args;
    void operator()(dnnl::stream& s) { prim.execute(s, args); }
  };

  // One layer for one batch size. `src`/`dsrc` alias the previous stage's `dst`/`ddst` (or the
  // network input and a scratch buffer for the first stage).
  struct Stage {
    dnnl::memory src, dst, dsrc, ddst;
    std::vector<Call> forward, backward, backward_input;  // backward_input: skipped for stage 0
    std::function<void()> before_backward;
  };

  struct Pass {
    std::vector<Stage> stages;
  };

  // State while building one pass: the shape flowing between layers, the buffers to alias.
  struct Builder {
    dnnl::prop_kind prop;
    bool training;
    dims shape;  // {N, C, H, W} or {N, C}
    void *prev_dst = nullptr, *prev_ddst = nullptr;
    std::size_t next_tensor = 0;
    int fc = 0, conv = 0;
  };

  dnnl::memory::desc plain(const dims& d) const {
    return {d, dt::f32, d.size() == 4 ? tag::nchw : d.size() == 2 ? tag::nc : tag::x};
  }

  // The trainer-owned tensor of this position in the layer list (created by the first pass).
  Tensor& tensor(Builder& b, std::string name, std::size_t n, dsd::Shape shape, bool prunable,
                 std::function<void(std::vector<float>&, std::mt19937_64&)> init) {
    if (b.next_tensor == tensors_.size())
      tensors_.push_back(std::make_unique<Tensor>(Tensor{std::move(name), std::vector<float>(n),
                                                         std::vector<float>(n), shape, prunable,
                                                         std::move(init)}));
    return *tensors_[b.next_tensor++];
  }

  static std::function<void(std::vector<float>&, std::mt19937_64&)> glorot(std::size_t fan_in,
                                                                           std::size_t fan_out) {
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    return [limit](std::vector<float>& w, std::mt19937_64& gen) { uniform(w, limit, gen); };
  }
  static void zero(std::vector<float>& w, std::mt19937_64&) { std::fill(w.begin(), w.end(), 0.f); }

  dnnl::memory wrap(const dnnl::memory::desc& md, std::vector<float>& v) const {
    return {md, eng_, v.data()};
  }
  // A reorder (layout change) of `from` into `to`.
  static Call reorder(const dnnl::memory& from, const dnnl::memory& to) {
    return {dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}};
  }

  // The weight `name` (out x fan_in, prunable, Glorot) and bias `name.bias` (zeros) of a layer.
  std::pair<Tensor*, Tensor*> weight_and_bias(Builder& b, const std::string& name, std::size_t out,
                                              std::size_t fan_in, std::size_t fan_out) {
    Tensor& w = tensor(b, name, out * fan_in, {out, fan_in}, true, glorot(fan_in, fan_out));
    return {&w, &tensor(b, name + ".bias", out, {1, out}, false, zero)};
  }

  // The arguments of a layer computing dst = op(src, w) + bias, for its forward pass, its weight
  // and bias gradients, and its input gradient.
  struct WeightedArgs {
    std::unordered_map<int, dnnl::memory> forward, weights_grad, input_grad;
  };
  WeightedArgs weighted_args(const Stage& s, Tensor& w, Tensor& bias,
                             const dnnl::memory::desc& w_md, const dnnl::memory::desc& b_md) const {
    const dnnl::memory wm = wrap(w_md, w.value);
    return {{{DNNL_ARG_SRC, s.src},
             {DNNL_ARG_WEIGHTS, wm},
             {DNNL_ARG_BIAS, wrap(b_md, bias.value)},
             {DNNL_ARG_DST, s.dst}},
            {{DNNL_ARG_SRC, s.src},
             {DNNL_ARG_DIFF_DST, s.ddst},
             {DNNL_ARG_DIFF_WEIGHTS, wrap(w_md, w.grad)},
             {DNNL_ARG_DIFF_BIAS, wrap(b_md, bias.grad)}},
            {{DNNL_ARG_DIFF_DST, s.ddst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, s.dsrc}}};
  }

  dnnl::memory zeros(const dnnl::memory::desc& md) const {
    dnnl::memory m(md, eng_);
    std::fill_n(static_cast<float*>(m.get_data_handle()), md.get_size() / sizeof(float), 0.0f);
    return m;
  }

  // Starts a stage reading `in_md` from the previous stage and writing `out_md`.
  Stage begin(Builder& b, const dnnl::memory::desc& in_md, const dnnl::memory::desc& out_md) const {
    Stage s;
    s.src = dnnl::memory(in_md, eng_, b.prev_dst ? b.prev_dst : DNNL_MEMORY_NONE);
    s.dst = dnnl::memory(out_md, eng_);
    if (b.training) {
      s.dsrc = b.prev_ddst ? dnnl::memory(in_md, eng_, b.prev_ddst) : dnnl::memory(in_md, eng_);
      s.ddst = dnnl::memory(out_md, eng_);
    }
    return s;
  }

  Pass build(const std::vector<LayerSpec>& layers, std::size_t n, bool training) {
    Builder b{training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
              training, dims{dnnl::memory::dim(n), 1, 28, 28}};
    Pass p;
    for (const auto& spec : layers) {
      p.stages.push_back(std::visit([&](const auto& l) { return add(b, l); }, spec));
      b.prev_dst = p.stages.back().dst.get_data_handle();
      if (training) b.prev_ddst = p.stages.back().ddst.get_data_handle();
    }
    return p;
  }

  Stage add(Builder& b, const Fc& l) {
    const dims in = b.shape;
    dims w_dims = in;
    w_dims[0] = l.out;
    std::size_t fan_in = 1;
    for (std::size_t d = 1; d < in.size(); ++d) fan_in *= static_cast<std::size_t>(in[d]);
    const auto out = static_cast<std::size_t>(l.out);
    const std::string name = "fc" + std::to_string(++b.fc);
    // oneDNN's "oi" (or "oihw" after a convolution) layout: one row of inputs per output.
    const auto [w, bias] = weight_and_bias(b, name, out, fan_in, out);
    const auto src_md = plain(in), w_md = plain(w_dims), b_md = plain({l.out}),
               dst_md = plain({in[0], l.out});
    Stage s = begin(b, src_md, dst_md);
    const dnnl::inner_product_forward::primitive_desc fwd({b.prop, src_md, w_md, b_md, dst_md},
                                                          eng_);
    const WeightedArgs args = weighted_args(s, *w, *bias, w_md, b_md);
    s.forward.push_back({dnnl::inner_product_forward(fwd), args.forward});
    if (b.training) {
      s.backward.push_back(
          {dnnl::inner_product_backward_weights({{src_md, w_md, b_md, dst_md}, eng_, fwd}),
           args.weights_grad});
      s.backward_input.push_back(
          {dnnl::inner_product_backward_data({{src_md, w_md, dst_md}, eng_, fwd}),
           args.input_grad});
    }
    b.shape = {in[0], l.out};
    return s;
  }

  Stage add(Builder& b, const Conv& l) {
    const dims in = b.shape;
    DSD_REQUIRE(in.size() == 4, invalid_argument, "a convolution needs an image input");
    const dims w_dims{l.out, in[1], l.kernel, l.kernel}, strides{1, 1}, pad{l.pad, l.pad};
    const dims out_dims{in[0], l.out, in[2] + 2 * l.pad - l.kernel + 1,
                        in[3] + 2 * l.pad - l.kernel + 1};
    const auto out = static_cast<std::size_t>(l.out),
               fan_in = static_cast<std::size_t>(in[1] * l.kernel * l.kernel);
    const std::string name = "conv" + std::to_string(++b.conv);
    const auto [w, bias] =
        weight_and_bias(b, name, out, fan_in, out * static_cast<std::size_t>(l.kernel * l.kernel));
    const auto src_md = plain(in), w_md = plain(w_dims), b_md = plain({l.out}),
               dst_md = plain(out_dims);
    Stage s = begin(b, src_md, dst_md);
    const auto algo = dnnl::algorithm::convolution_direct;
    const dnnl::convolution_forward::primitive_desc fwd(
        {b.prop, algo, src_md, w_md, b_md, dst_md, strides, pad, pad}, eng_);
    const WeightedArgs args = weighted_args(s, *w, *bias, w_md, b_md);
    s.forward.push_back({dnnl::convolution_forward(fwd), args.forward});
    if (b.training) {
      s.backward.push_back({dnnl::convolution_backward_weights(
                                {{algo, src_md, w_md, b_md, dst_md, strides, pad, pad}, eng_, fwd}),
                            args.weights_grad});
      s.backward_input.push_back({dnnl::convolution_backward_data(
                                      {{algo, src_md, w_md, dst_md, strides, pad, pad}, eng_, fwd}),
                                  args.input_grad});
    }
    b.shape = out_dims;
    return s;
  }

  Stage add(Builder& b, const MaxPool& l) {
    const dims in = b.shape;
    DSD_REQUIRE(in.size() == 4 && in[2] % l.size == 0 && in[3] % l.size == 0, invalid_argument,
                "max pooling needs an image input whose sides divide by the pool size");
    const dims out_dims{in[0], in[1], in[2] / l.size, in[3] / l.size}, k{l.size, l.size},
        zero_pad{0, 0};
    const auto src_md = plain(in), dst_md = plain(out_dims);
    Stage s = begin(b, src_md, dst_md);
    const auto algo = dnnl::algorithm::pooling_max;
    const dnnl::pooling_forward::primitive_desc fwd(
        {b.prop, algo, src_md, dst_md, k, k, zero_pad, zero_pad}, eng_);
    Call f{dnnl::pooling_forward(fwd), {{DNNL_ARG_SRC, s.src}, {DNNL_ARG_DST, s.dst}}};
    if (b.training) {
      const dnnl::memory ws(fwd.workspace_desc(), eng_);  // where each maximum came from
      f.args.insert({DNNL_ARG_WORKSPACE, ws});
      s.backward_input.push_back(
          {dnnl::pooling_backward({{algo, src_md, dst_md, k, k, zero_pad, zero_pad}, eng_, fwd}),
           {{DNNL_ARG_DIFF_DST, s.ddst}, {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_DIFF_SRC, s.dsrc}}});
    }
    s.forward.push_back(std::move(f));
    b.shape = out_dims;
    return s;
  }

  Stage add(Builder& b, const Relu&) {
    const auto md = plain(b.shape);
    Stage s = begin(b, md, md);
    const auto algo = dnnl::algorithm::eltwise_relu;
    const dnnl::eltwise_forward::primitive_desc fwd({b.prop, algo, md, 0.0f, 0.0f}, eng_);
    s.forward.push_back(
        {dnnl::eltwise_forward(fwd), {{DNNL_ARG_SRC, s.src}, {DNNL_ARG_DST, s.dst}}});
    if (b.training)
      s.backward_input.push_back(
          {dnnl::eltwise_backward({{algo, md, md, 0.0f, 0.0f}, eng_, fwd}),
           {{DNNL_ARG_SRC, s.src}, {DNNL_ARG_DIFF_DST, s.ddst}, {DNNL_ARG_DIFF_SRC, s.dsrc}}});
    return s;
  }

  Stage add(Builder& b, const Lstm& l) {
    const dims in = b.shape;
    DSD_REQUIRE(in.size() == 4 && in[1] == 1, invalid_argument,
                "the LSTM reads the rows of a one-channel image");
    const dnnl::memory::dim N = in[0], T = in[2], C = in[3], H = l.hidden;
    const auto c = static_cast<std::size_t>(C), h = static_cast<std::size_t>(H);
    // Input-to-gates and hidden-to-gates weights in oneDNN's ldigo layout (rows: inputs).
    const double limit = 1.0 / std::sqrt(double(H));
    const auto init = [limit](std::vector<float>& w, std::mt19937_64& gen) {
      uniform(w, limit, gen);
    };
    Tensor& wx = tensor(b, "lstm.input", c * 4 * h, {c, 4 * h}, true, init);
    Tensor& wh = tensor(b, "lstm.recurrent", h * 4 * h, {h, 4 * h}, true, init);
    Tensor& bias = tensor(b, "lstm.bias", 4 * h, {1, 4 * h}, false,
                          [h](std::vector<float>& v, std::mt19937_64&) {
                            std::fill(v.begin(), v.end(), 0.0f);
                            std::fill_n(v.begin() + std::ptrdiff_t(h), h, 1.0f);  // forget gate
                          });
    // The image's bytes, N x 28 rows x 28 pixels, are the sequence in oneDNN's "ntc" layout; the
    // LSTM reads a time-major ("tnc") copy. Two workarounds for oneDNN 2.6's LSTM backward, both
    // caught by experiments/test_nets.cpp: with an "ntc" input the weight gradients come out as
    // garbage, and without explicit initial states (zeros here) the recurrent weights' gradient
    // is wrong.
    const dnnl::memory::desc src_md({T, N, C}, dt::f32, tag::ntc),
        x_md({T, N, C}, dt::f32, tag::tnc), wx_md({1, 1, C, 4, H}, dt::f32, tag::ldigo),
        wh_md({1, 1, H, 4, H}, dt::f32, tag::ldigo), b_md({1, 1, 4, H}, dt::f32, tag::ldgo),
        seq_md({T, N, H}, dt::f32, tag::tnc), last_md({1, 1, N, H}, dt::f32, tag::ldnc);
    const auto dir = dnnl::rnn_direction::unidirectional_left2right;
    // The stage's output is the last hidden state, N x H.
    Stage s = begin(b, src_md, last_md);
    const dnnl::memory x(x_md, eng_);
    s.forward.push_back(reorder(s.src, x));
    const dnnl::lstm_forward::primitive_desc fwd(
        {b.prop, dir, x_md, last_md, last_md, wx_md, wh_md, b_md, seq_md, last_md, last_md}, eng_);
    const dnnl::memory h0 = zeros(last_md), c0 = zeros(last_md), seq(seq_md, eng_),
                       cell(last_md, eng_), wxm = wrap(wx_md, wx.value),
                       whm = wrap(wh_md, wh.value);
    Call f{dnnl::lstm_forward(fwd),
           {{DNNL_ARG_SRC_LAYER, x},
            {DNNL_ARG_SRC_ITER, h0},
            {DNNL_ARG_SRC_ITER_C, c0},
            {DNNL_ARG_WEIGHTS_LAYER, wxm},
            {DNNL_ARG_WEIGHTS_ITER, whm},
            {DNNL_ARG_BIAS, wrap(b_md, bias.value)},
            {DNNL_ARG_DST_LAYER, seq},
            {DNNL_ARG_DST_ITER, s.dst},
            {DNNL_ARG_DST_ITER_C, cell}}};
    if (b.training) {
      const dnnl::memory ws(fwd.workspace_desc(), eng_);
      f.args.insert({DNNL_ARG_WORKSPACE, ws});
      // Backward wants the weights in its own layout ("any": usually ldgoi); they are reordered
      // from the trainer's buffers before each backward pass.
      const dnnl::memory::desc any_x({1, 1, C, 4, H}, dt::f32, tag::any),
          any_h({1, 1, H, 4, H}, dt::f32, tag::any);
      // clang-format off
      const dnnl::lstm_backward::primitive_desc bwd(
          {dnnl::prop_kind::backward, dir,
           x_md, last_md, last_md, any_x, any_h, b_md, seq_md, last_md, last_md,   // as forward
           x_md, last_md, last_md, wx_md, wh_md, b_md, seq_md, last_md, last_md},  // gradients
          eng_, fwd);
      // clang-format on
      const dnnl::memory bx(bwd.weights_layer_desc(), eng_), bh(bwd.weights_iter_desc(), eng_);
      const dnnl::memory dx(x_md, eng_), dh0(last_md, eng_), dc0(last_md, eng_);
      const dnnl::memory dseq = zeros(seq_md), dcell = zeros(last_md);  // the loss uses h_T only
      s.backward.push_back(reorder(wxm, bx));
      s.backward.push_back(reorder(whm, bh));
      // The forward pass's arguments (workspace included), its weights in backward's layout, and
      // the gradients.
      auto args = f.args;
      args.insert_or_assign(DNNL_ARG_WEIGHTS_LAYER, bx);
      args.insert_or_assign(DNNL_ARG_WEIGHTS_ITER, bh);
      args.insert({{DNNL_ARG_DIFF_SRC_LAYER, dx},
                   {DNNL_ARG_DIFF_SRC_ITER, dh0},
                   {DNNL_ARG_DIFF_SRC_ITER_C, dc0},
                   {DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(wx_md, wx.grad)},
                   {DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(wh_md, wh.grad)},
                   {DNNL_ARG_DIFF_BIAS, wrap(b_md, bias.grad)},
                   {DNNL_ARG_DIFF_DST_LAYER, dseq},
                   {DNNL_ARG_DIFF_DST_ITER, s.ddst},
                   {DNNL_ARG_DIFF_DST_ITER_C, dcell}});
      s.backward.push_back({dnnl::lstm_backward(bwd), std::move(args)});
      s.backward_input.push_back(reorder(dx, s.dsrc));
      // oneDNN's RNN backward accumulates into the weight gradients.
      s.before_backward = [&wx, &wh, &bias] {
        for (auto* g : {&wx.grad, &wh.grad, &bias.grad}) std::fill(g->begin(), g->end(), 0.0f);
      };
    }
    s.forward.push_back(std::move(f));
    b.shape = {N, H};
    return s;
  }

  void forward(Pass& p, const float* x) {
    p.stages.front().src.set_data_handle(const_cast<float*>(x));
    for (auto& st : p.stages)
      for (auto& c : st.forward) c(stream_);
    stream_.wait();
  }

  // (Re)wraps every tensor as a Masked parameter, prunable ones first; masks and state reset.
  void wrap() {
    params_.clear();
    order_.clear();
    for (const bool prunable : {true, false})
      for (auto& t : tensors_)
        if (t->prunable == prunable) {
          params_.emplace_back(t->value, t->name, t->shape);
          order_.push_back(t.get());
        }
    prunable_ = static_cast<std::size_t>(
        std::count_if(tensors_.begin(), tensors_.end(), [](const auto& t) { return t->prunable; }));
  }

  dnnl::engine eng_;
  dnnl::stream stream_;
  std::size_t batch_, eval_batch_;
  std::vector<std::unique_ptr<Tensor>> tensors_;  // in layer order
  std::vector<Param> params_;                     // prunable first, then the others
  std::vector<Tensor*> order_;                    // the tensor behind each of params_
  std::size_t prunable_ = 0;
  Pass train_, eval_;
  // A last partial evaluation batch, padded (the padding rows are never read back).
  std::vector<float> pad_ = std::vector<float>(eval_batch_ * fashion::Split::pixels);
};

/// LeNet-300-100 style MLP: 784 -> hidden... -> 10, ReLU between layers.
inline std::vector<LayerSpec> mlp(const std::vector<std::size_t>& hidden) {
  std::vector<LayerSpec> l;
  for (const auto h : hidden) l.insert(l.end(), {Fc{int(h)}, Relu{}});
  l.push_back(Fc{10});
  return l;
}

/// LeNet-5 style CNN: conv c1@5x5 (pad 2) -> pool -> conv c2@5x5 -> pool -> FC f1 [-> FC f2] -> 10.
/// `widths` is {c1, c2, f1, f2} (LeNet-5: 6, 16, 120, 84) or {c1, c2, f1}, one hidden FC layer
/// (the widths of Caffe's LeNet: 20, 50, 500).
inline std::vector<LayerSpec> lenet5(const std::vector<int>& widths = {6, 16, 120, 84}) {
  if (widths.size() != 3 && widths.size() != 4)
    DSD_THROW(invalid_argument, "lenet5: widths holds conv1, conv2, fc1 [, fc2]: 3 or 4 values, got ",
              widths.size());
  std::vector<LayerSpec> l = {Conv{widths[0], 5, 2}, Relu{}, MaxPool{2}, Conv{widths[1], 5}, Relu{},
                              MaxPool{2}};
  for (std::size_t i = 2; i < widths.size(); ++i) l.insert(l.end(), {Fc{widths[i]}, Relu{}});
  l.push_back(Fc{10});
  return l;
}

/// An LSTM reading the 28 rows of the image, then a classifier on its last hidden state.
inline std::vector<LayerSpec> row_lstm(int hidden) { return {Lstm{hidden}, Fc{10}}; }

}  // namespace experiments
