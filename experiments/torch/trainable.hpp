#pragma once
// The paper's networks with what training them needs: a synthetic batch of the network's real
// input shape, its loss, its accuracy and which parameters dsd wraps; and the recipe's optimizer.
// Shared by the trainer (paper_nets.cpp) and the real-shape benchmarks (bench/bench_paper.cpp).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <dsd/adapters/torch.hpp>
#include <dsd/detail/text.hpp>
#include <dsd/error.hpp>

#include "paper_nets.hpp"
#include "paper_rnns.hpp"

namespace experiments::paper {

/// Every name `make_trainable` takes.
inline const std::vector<std::string>& trainable_names() {
  static const std::vector<std::string> names{"alexnet",       "alexnet_caffe", "vgg16",      "googlenet",
                                              "googlenet_aux", "resnet18",      "resnet50",   "resnet152",
                                              "squeezenet1_0", "neuraltalk",    "deepspeech1", "deepspeech2"};
  return names;
}

/// A network with what training it needs: its module, a synthetic batch, the loss of a batch,
/// and which of its parameters dsd wraps.
struct Trainable {
  std::shared_ptr<torch::nn::Module> module;
  std::function<std::pair<torch::Tensor, torch::Tensor>(int)> batch;  ///< (input, target) of seed
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> loss;
  std::function<double(const torch::Tensor&, const torch::Tensor&)> accuracy;  ///< NaN: none
  dsd::torch::WrapOptions wrap{};
  std::string input;  ///< the input's shape, as printed
};


/// The synthetic inputs' shape: the batch, the CNNs' image side, DeepSpeech's frames per
/// utterance, NeuralTalk's words per caption.
struct InputShape {
  std::int64_t batch = 8, image = 224, frames = 64, caption = 16;
};

/// The CTC loss of a network emitting log-probabilities [T, B, symbols] (DeepSpeech 1 and 2):
/// every utterance T frames and every target its full row long.
template <class Impl>
std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> ctc_loss_of(std::shared_ptr<Impl> impl) {
  return [impl](const torch::Tensor& x, const torch::Tensor& y) {
    const torch::Tensor logp = impl->forward(x);
    const std::int64_t b = logp.size(1);
    return torch::nn::functional::ctc_loss(logp, y, torch::full({b}, logp.size(0), torch::kLong),
                                           torch::full({b}, y.size(1), torch::kLong));
  };
}

/// The network called `net` (a `paper_nets --net` name) with synthetic batches of `shape`.
inline Trainable make_trainable(const std::string& net, const InputShape& shape) {
  const std::int64_t b = shape.batch;
  Trainable t;
  if (net == "deepspeech1") {
    DeepSpeech1 m;
    t.module = m.ptr();
    const std::int64_t frames = shape.frames;
    t.input = dsd::detail::format("%d frames x %d x (11 x 161)", static_cast<int>(frames), static_cast<int>(b));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({frames, b, 11 * 161}), torch::randint(1, 29, {b, frames / 4}, torch::kLong)};
    };
    t.loss = ctc_loss_of(m.ptr());
  } else if (net == "deepspeech2") {
    DeepSpeech2 m;
    t.module = m.ptr();
    const std::int64_t frames = shape.frames;
    t.input = dsd::detail::format("%d x 1 x 161 bins x %d frames", static_cast<int>(b), static_cast<int>(frames));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 1, 161, frames}), torch::randint(1, 54, {b, frames / 8}, torch::kLong)};
    };
    t.loss = ctc_loss_of(m.ptr());
  } else if (net == "neuraltalk") {
    NeuralTalk m;
    t.module = m.ptr();
    const std::int64_t words = shape.caption, vocabulary = m->Ws.size(0);
    t.input = dsd::detail::format("%d x 4096 image features, captions of %d words", static_cast<int>(b), static_cast<int>(words));
    // input: the features and the caption; target: the caption (the word after each input)
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 4096}), torch::randint(0, vocabulary, {words, b}, torch::kLong)};
    };
    const auto logits = [impl = m.ptr()](const torch::Tensor& x, const torch::Tensor& y) { return impl->forward(x, y); };
    t.loss = [logits](const torch::Tensor& x, const torch::Tensor& y) {
      const torch::Tensor z = logits(x, y);
      return torch::nn::functional::cross_entropy(z.flatten(0, 1), y.flatten());
    };
    t.accuracy = [logits](const torch::Tensor& x, const torch::Tensor& y) {
      return logits(x, y).argmax(2).eq(y).to(torch::kDouble).mean().item<double>();
    };
    // Karpathy's matrices are not called weight*: every matrix (2-D), not be and bd
    t.wrap.select = [](const std::string&, const torch::Tensor& p) { return p.dim() >= 2; };
  } else {
    const std::int64_t s = shape.image;
    DSD_REQUIRE(net != "alexnet_caffe" || CaffeAlexNetImpl::pool5_side(s) == 6, invalid_argument,
                "alexnet_caffe takes images of 199 to 230 pixels a side (its fc6 reads 6 x 6), not ", s);
    auto vision = make_torchvision(net);
    t.module = vision.module;
    t.input = dsd::detail::format("%d x 3 x %d x %d", static_cast<int>(b), static_cast<int>(s), static_cast<int>(s));
    t.batch = [=](int seed) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      return std::pair{torch::randn({b, 3, s, s}), torch::randint(0, 1000, {b}, torch::kLong)};
    };
    auto forward = vision.forward;
    t.loss = vision.loss;  // GoogLeNet's weighs in its auxiliary heads while training
    t.accuracy = [forward](const torch::Tensor& x, const torch::Tensor& y) {
      return forward(x).argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
    };
  }
  return t;
}

/// The recipe's optimizer: Nesterov or plain momentum SGD (0.9), the trainer's weight decay.
inline std::unique_ptr<torch::optim::SGD> make_optimizer(const std::string& name, torch::nn::Module& m, double wd) {
  DSD_REQUIRE(name.empty() || name == "sgd" || name == "nesterov", invalid_argument, "the recipe's optimizer \"",
              name, "\" is not sgd or nesterov, the two the paper's recipes use");
  return std::make_unique<torch::optim::SGD>(
      m.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).nesterov(name == "nesterov").weight_decay(wd));
}

}  // namespace experiments::paper
