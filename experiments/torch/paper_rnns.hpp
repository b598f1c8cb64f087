#pragma once
// The DSD paper's recurrent networks as libtorch modules, written from the figures the DSD paper
// and the networks' own papers give (no reference implementation ships with torchvision):
//
// - NeuralTalk: Karpathy's `lstm_generator` (neuraltalk, Python): an image projection We (4096 x
//   512) and be, a word embedding Ws (V x 512), one LSTM whose single matrix WLSTM holds the bias
//   row, the input and the recurrent weights ((1 + E + H) x 4H = 1025 x 2048 = 2,099,200 with
//   E = H = 512), and a decoder Wd (512 x V), bd. With V = 2,538 (a Flickr8k-sized vocabulary;
//   the paper does not publish its size) the total is 6,798,314, the paper's "6.8 M".
// - DeepSpeech 1 (DSD paper, Table 6; Hannun et al. 2014): three clipped-ReLU FC layers over 11
//   frames of 161 spectrogram bins (1771 -> 1024: 1,814,528; 1024 -> 1024: 1,049,600 twice), a
//   bidirectional RNN whose two directions share their input weights (1024 x 1024 + bias, and a
//   1024 x 1024 recurrent matrix per direction: 3,146,752), an FC layer over the two directions'
//   sum (1,049,600) and the output over 29 symbols (29,725): 8,139,805 in all, Table 6's 8.14 M.
// - DeepSpeech 2 (DSD paper, Table 8; Amodei et al. 2015): two 2-D convolutions over a
//   161-bin spectrogram (32 filters of 41 x 11, stride 2 x 2; 32 of 21 x 11, stride 2 x 1; no
//   bias, BatchNorm over channel x frequency: 14,432 + 2 x 32 x 81 = 19,616 and 236,544 + 2 x 32 x
//   41 = 239,168), seven bidirectional RNN layers of 1760 (shared input weights without bias,
//   sequence-wise BatchNorm, one recurrent matrix per direction: 1312 x 1760 + 2 x 1760^2 + 2 x 1760
//   = 8,507,840 for the first, 3 x 1760^2 + 2 x 1760 = 9,296,320 for the six others), one FC layer
//   of 1760 with BatchNorm (3,101,120), and the output. Table 8 gives the output 95,054
//   parameters, which no layer over 1760 inputs has (95,054 = 2 x 47,527); ours is 1760 -> 54
//   with a bias, 95,094, the nearest (40 more): 67,740,758 in all, Table 8's 67.74 M.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace experiments::paper {

namespace rnn_nn = torch::nn;

/// DeepSpeech's clipped ReLU, min(max(x, 0), 20).
inline torch::Tensor clipped_relu(const torch::Tensor& x) { return torch::clamp(x, 0.0, 20.0); }

/// Karpathy's NeuralTalk LSTM generator. `forward(features [B, 4096], words [T, B])` returns the
/// logits [T, B, V] of the word after each of the T inputs (image first, then words 0..T-2).
struct NeuralTalkImpl : rnn_nn::Module {
  std::int64_t embed, hidden;
  torch::Tensor We, be, Ws, WLSTM, Wd, bd;
  explicit NeuralTalkImpl(std::int64_t vocabulary = 2538, std::int64_t image = 4096, std::int64_t e = 512,
                          std::int64_t h = 512)
      : embed(e), hidden(h) {
    // neuraltalk's initw: uniform(-1, 1) * 0.1; biases zero
    const auto initw = [](std::int64_t r, std::int64_t c) { return (torch::rand({r, c}) * 2 - 1) * 0.1; };
    We = register_parameter("We", initw(image, e));
    be = register_parameter("be", torch::zeros({e}));
    Ws = register_parameter("Ws", initw(vocabulary, e));
    WLSTM = register_parameter("WLSTM", initw(1 + e + h, 4 * h));
    Wd = register_parameter("Wd", initw(h, vocabulary));
    bd = register_parameter("bd", torch::zeros({vocabulary}));
  }
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& words) {
    const std::int64_t steps = words.size(0), batch = words.size(1);
    const torch::Tensor image = torch::matmul(features, We) + be;
    const torch::Tensor embedded = Ws.index_select(0, words.flatten()).view({steps, batch, embed});
    // the state in the module's dtype and device (as its parameters)
    torch::Tensor h = torch::zeros({batch, hidden}, We.options()), c = torch::zeros({batch, hidden}, We.options());
    const torch::Tensor one = torch::ones({batch, 1}, We.options());
    std::vector<torch::Tensor> out;
    for (std::int64_t t = 0; t < steps; ++t) {
      const torch::Tensor x = t == 0 ? image : embedded[t - 1];
      const torch::Tensor ifog = torch::matmul(torch::cat({one, x, h}, 1), WLSTM);
      const auto gates = ifog.chunk(4, 1);
      c = torch::sigmoid(gates[0]) * torch::tanh(gates[3]) + torch::sigmoid(gates[1]) * c;
      h = torch::sigmoid(gates[2]) * torch::tanh(c);
      out.push_back(torch::matmul(h, Wd) + bd);
    }
    return torch::stack(out);
  }
};
TORCH_MODULE(NeuralTalk);

/// A bidirectional RNN whose two directions share one input projection (DeepSpeech 1 and 2):
/// h_f[t] = g(W x[t] + U_f h_f[t-1]), h_b[t] = g(W x[t] + U_b h_b[t+1]), output h_f + h_b.
/// DeepSpeech 2's has no input bias and a sequence-wise BatchNorm of W x (`batch_norm`).
struct BiRnnImpl : rnn_nn::Module {
  rnn_nn::Linear input{nullptr};
  rnn_nn::BatchNorm1d bn{nullptr};
  torch::Tensor weight_hh_forward, weight_hh_backward;
  BiRnnImpl(std::int64_t in, std::int64_t h, bool batch_norm) {
    input = register_module("input", rnn_nn::Linear(rnn_nn::LinearOptions(in, h).bias(!batch_norm)));
    if (batch_norm) bn = register_module("bn", rnn_nn::BatchNorm1d(h));
    const double bound = 1.0 / std::sqrt(static_cast<double>(h));
    weight_hh_forward = register_parameter("weight_hh_forward", torch::empty({h, h}).uniform_(-bound, bound));
    weight_hh_backward = register_parameter("weight_hh_backward", torch::empty({h, h}).uniform_(-bound, bound));
  }
  /// `x` [T, B, in] -> [T, B, h].
  torch::Tensor forward(const torch::Tensor& x) {
    const std::int64_t steps = x.size(0), batch = x.size(1);
    torch::Tensor wx = input->forward(x.flatten(0, 1));
    if (bn) wx = bn->forward(wx);
    wx = wx.view({steps, batch, -1});
    std::vector<torch::Tensor> fwd(static_cast<std::size_t>(steps)), bwd(static_cast<std::size_t>(steps));
    torch::Tensor hf = torch::zeros({batch, wx.size(2)}, wx.options()), hb = hf;
    for (std::int64_t t = 0; t < steps; ++t) {
      hf = clipped_relu(wx[t] + torch::matmul(hf, weight_hh_forward.t()));
      hb = clipped_relu(wx[steps - 1 - t] + torch::matmul(hb, weight_hh_backward.t()));
      fwd[static_cast<std::size_t>(t)] = hf;
      bwd[static_cast<std::size_t>(steps - 1 - t)] = hb;
    }
    return torch::stack(fwd) + torch::stack(bwd);
  }
};
TORCH_MODULE(BiRnn);

/// DeepSpeech 1 (Table 6). `forward(x [T, B, 11 * 161])` -> log-probabilities [T, B, 29] (CTC).
struct DeepSpeech1Impl : rnn_nn::Module {
  rnn_nn::Linear fc1{11 * 161, 1024}, fc2{1024, 1024}, fc3{1024, 1024};
  BiRnn rnn4{1024, 1024, false};
  rnn_nn::Linear fc5{1024, 1024}, out{1024, 29};
  DeepSpeech1Impl() {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("fc3", fc3);
    register_module("rnn4", rnn4);
    register_module("fc5", fc5);
    register_module("out", out);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = clipped_relu(fc3->forward(clipped_relu(fc2->forward(clipped_relu(fc1->forward(x))))));
    y = clipped_relu(fc5->forward(rnn4->forward(y)));
    return torch::log_softmax(out->forward(y), 2);
  }
};
TORCH_MODULE(DeepSpeech1);

/// DeepSpeech 2 (Table 8). `forward(spectrogram [B, 1, 161, T])` -> log-probabilities
/// [T', B, 54] with T' = ceil(T / 2) (CTC).
struct DeepSpeech2Impl : rnn_nn::Module {
  rnn_nn::Conv2d conv1{rnn_nn::Conv2dOptions(1, 32, {41, 11}).stride({2, 2}).padding({20, 5}).bias(false)};
  rnn_nn::BatchNorm1d conv1_bn{32 * 81};
  rnn_nn::Conv2d conv2{rnn_nn::Conv2dOptions(32, 32, {21, 11}).stride({2, 1}).padding({10, 5}).bias(false)};
  rnn_nn::BatchNorm1d conv2_bn{32 * 41};
  std::vector<BiRnn> rnns;
  rnn_nn::Linear fc{rnn_nn::LinearOptions(1760, 1760).bias(false)};
  rnn_nn::BatchNorm1d fc_bn{1760};
  rnn_nn::Linear out{1760, 54};
  DeepSpeech2Impl() {
    register_module("conv1", conv1);
    register_module("conv1_bn", conv1_bn);
    register_module("conv2", conv2);
    register_module("conv2_bn", conv2_bn);
    for (int i = 0; i < 7; ++i)
      rnns.push_back(register_module("rnn" + std::to_string(i + 1), BiRnn(i == 0 ? 32 * 41 : 1760, 1760, true)));
    register_module("fc", fc);
    register_module("fc_bn", fc_bn);
    register_module("out", out);
  }
  /// BatchNorm over the channel x frequency features of every (batch, time) position.
  static torch::Tensor norm(const torch::Tensor& y, rnn_nn::BatchNorm1d& bn) {
    const auto b = y.size(0), c = y.size(1), f = y.size(2), t = y.size(3);
    const torch::Tensor flat = y.permute({0, 3, 1, 2}).reshape({b * t, c * f});
    return bn->forward(flat).view({b, t, c, f}).permute({0, 2, 3, 1});
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = clipped_relu(norm(conv1->forward(x), conv1_bn));
    y = clipped_relu(norm(conv2->forward(y), conv2_bn));  // [B, 32, 41, T']
    y = y.permute({3, 0, 1, 2}).flatten(2);               // [T', B, 1312]
    for (auto& r : rnns) y = r->forward(y);
    const auto steps = y.size(0), batch = y.size(1);
    y = clipped_relu(fc_bn->forward(fc->forward(y.flatten(0, 1)))).view({steps, batch, 1760});
    return torch::log_softmax(out->forward(y), 2);
  }
};
TORCH_MODULE(DeepSpeech2);

}  // namespace experiments::paper
