// The experiment trainers' oneDNN forward/backward (inner product, convolution, max pooling, ReLU, LSTM,
// softmax cross-entropy) against finite differences of the loss, for every parameter tensor of
// each network, and the accuracy bookkeeping on a partial last batch.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <common/net.hpp>
#include <common/trainer.hpp>
#include <random>
#include <vector>

namespace {
constexpr std::size_t batch = 4;

struct Fixture {
  experiments::Net net;
  std::vector<float> x = std::vector<float>(batch * fashion::Split::pixels);
  std::vector<std::uint8_t> y = {3, 0, 9, 3};
  explicit Fixture(const std::vector<experiments::LayerSpec>& layers) : net(layers, batch, 3) {
    net.init(11);
    std::mt19937_64 gen(8);
    for (auto& v : x) v = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1p-53 - 0.5);
  }
  double loss() { return net.train_batch(x.data(), y.data()); }
};

// Central differences around float weights with step h. The loss (about 2.3) is rounded to
// float's 2.4e-7, so a difference quotient carries up to 2 * 2.4e-7 / (2h) of noise besides a 3 %
// tolerance. Where a step moves a ReLU pre-activation across zero, or changes which input of a
// pooling window is largest, the loss has a kink and no difference quotient means anything; such
// points are recognised by one-sided differences that disagree, and skipped (at most a quarter).
void check_tensor(Fixture& f, experiments::Param& p, const std::vector<float>& grad, float h) {
  const auto w = p.weights();
  const std::size_t stride = w.size() > 40 ? w.size() / 40 : 1;
  const double center = f.loss();
  int checked = 0, kinks = 0;
  for (std::size_t i = 0; i < w.size(); i += stride) {
    const float saved = w[i];
    w[i] = saved + h;
    const double up = f.loss();
    w[i] = saved - h;
    const double down = f.loss();
    w[i] = saved;
    const double forward = (up - center) / h, backward = (center - down) / h;
    const double disagreement = std::abs(forward - backward);  // ~1e-4 from float rounding alone
    if (disagreement > 1e-3 &&
        disagreement > 0.2 * std::max(std::abs(forward), std::abs(backward))) {
      ++kinks;
      continue;
    }
    CAPTURE(p.name());
    CAPTURE(i);
    const double numeric = (up - down) / (2.0 * h), noise = 2 * 2.4e-7 / (2.0 * h);
    CAPTURE(numeric);
    CHECK(std::abs(double(grad[i]) - numeric) <= 0.03 * std::abs(numeric) + noise);
    ++checked;
  }
  CHECK(checked > 0);
  CHECK(kinks * 3 <= checked);
}

void check_all(const std::vector<experiments::LayerSpec>& layers, std::size_t tensors,
               float h = 2e-3f) {
  Fixture f(layers);
  REQUIRE(f.net.all().size() == tensors);
  for (std::size_t i = 0; i < f.net.all().size(); ++i) {
    f.loss();  // the gradients at the unperturbed point
    const std::vector<float> g = f.net.grad(i);
    REQUIRE(g.size() == f.net.all()[i].size());
    CHECK(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; }));
    check_tensor(f, f.net.all()[i], g, h);
  }
}
}  // namespace

TEST_CASE("MLP backward (inner product, ReLU, softmax cross-entropy) matches finite differences") {
  check_all(experiments::mlp({7, 5}), 6);
}

TEST_CASE("CNN backward (convolution, max pooling, inner product) matches finite differences") {
  // LeNet-5 without its ReLUs (checked in the MLP): every conv1 weight feeds thousands of ReLUs
  // and pooling windows, so a step small enough to cross few of their kinks is needed.
  using namespace experiments;
  check_all({Conv{3, 5, 2}, MaxPool{2}, Conv{4, 5}, MaxPool{2}, Fc{6}, Fc{10}}, 8, 2e-4f);
}

TEST_CASE(
    "LSTM backward (oneDNN LSTM, gradients not accumulated across batches) matches finite "
    "differences") {
  // The gradients are read after many passes: any accumulation across calls would show.
  check_all(experiments::row_lstm(6), 5);
}

TEST_CASE("parameters: prunable weights first, biases and excluded tensors after") {
  experiments::Net net(experiments::row_lstm(6), batch, 3);
  auto names = [](std::span<experiments::Param> ps) {
    std::vector<std::string> n;
    for (auto& p : ps) n.push_back(p.name());
    return n;
  };
  CHECK(names(net.weights()) == std::vector<std::string>{"lstm.input", "lstm.recurrent", "fc1"});
  net.exclude({"lstm.input"});
  CHECK(names(net.weights()) == std::vector<std::string>{"lstm.recurrent", "fc1"});
  CHECK(names(net.others()) == std::vector<std::string>{"lstm.input", "lstm.bias", "fc1.bias"});
  CHECK(net.all()[2].name() == "lstm.input");
  CHECK(&net.grad(2) != &net.grad(0));
  CHECK(net.grad(2).size() == 28 * 4 * 6);
  CHECK_THROWS_WITH_AS(net.exclude({"lstm.inptu"}),
                       doctest::Contains("no parameter named \"lstm.inptu\""), dsd::error);
  CHECK(names(experiments::Net(experiments::lenet5(), batch, 3).weights()) ==
        std::vector<std::string>{"conv1", "conv2", "fc1", "fc2", "fc3"});
  experiments::Net caffe(experiments::lenet5({20, 50, 500}), batch, 3);  // one hidden FC layer
  CHECK(names(caffe.weights()) == std::vector<std::string>{"conv1", "conv2", "fc1", "fc2"});
  CHECK(caffe.all()[2].size() == 500 * 50 * 5 * 5);
  CHECK_THROWS_WITH_AS(experiments::lenet5({6, 16}), doctest::Contains("3 or 4 values, got 2"), dsd::error);
}

TEST_CASE("accuracy counts a partial last batch correctly") {
  experiments::Net net(experiments::mlp({8}), 4, 3);
  net.init(1);
  fashion::Split data;
  data.count = 7;  // 3 + 3 + 1: the last evaluation batch is padded
  data.images.assign(7 * fashion::Split::pixels, 0.0f);
  data.labels.assign(7, 0);
  const double a0 = net.accuracy(data);
  CHECK((a0 == 0.0 || a0 == 1.0));  // identical inputs: all right or all wrong
  for (auto& l : data.labels) l = 1;
  data.labels[6] = 0;
  const double a1 = net.accuracy(data);
  CHECK((a1 == doctest::Approx(1.0 / 7) || a1 == doctest::Approx(6.0 / 7) || a1 == 0.0));
}

TEST_CASE("the experiments' trainer: the sparse phase keeps exactly the pruned weights at zero") {
  // Synthetic images (the trainer path is what is under test); CNN and LSTM, every batch.
  experiments::Data data;
  std::mt19937_64 gen(5);
  for (auto* s : {&data.train, &data.validation, &data.test}) {
    s->count = s == &data.train ? 64 : 16;
    s->images.resize(s->count * fashion::Split::pixels);
    for (auto& v : s->images) v = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1p-53);
    s->labels.resize(s->count);
    for (auto& l : s->labels) l = static_cast<std::uint8_t>(gen() % 10);
  }
  for (const auto& layers :
       {experiments::lenet5({3, 4, 6, 5}), experiments::lenet5({3, 4, 6}), experiments::row_lstm(6)}) {
    experiments::Net net(layers, 8, 16);
    experiments::Options o;
    o.epochs = {1, 2, 1};
    o.sparsity = 0.6;
    o.quiet = true;
    std::vector<std::vector<bool>> pruned;  // per weight tensor, captured at the first sparse step
    std::size_t sparse_steps = 0, redense_moved = 0;
    o.after_step = [&](const dsd::EpochContext& ctx) {
      auto w = net.weights();
      if (ctx.phase == dsd::Phase::sparse) {
        if (pruned.empty())
          for (auto& p : w) {
            std::vector<bool> z(p.size());
            for (std::size_t i = 0; i < p.size(); ++i) z[i] = !p.mask().test(i);
            pruned.push_back(z);
          }
        for (std::size_t l = 0; l < w.size(); ++l) {
          std::size_t zeros = 0;
          for (std::size_t i = 0; i < w[l].size(); ++i) {
            REQUIRE(pruned[l][i] == !w[l].mask().test(i));         // the mask holds
            if (pruned[l][i]) REQUIRE(w[l].weights()[i] == 0.0f);  // pruned: exactly zero
            zeros += w[l].weights()[i] == 0.0f;
          }
          CHECK(zeros == std::size_t(std::llround(0.6 * double(w[l].size()))));
        }
        ++sparse_steps;
      } else if (ctx.phase == dsd::Phase::redense) {
        for (std::size_t l = 0; l < w.size(); ++l)
          for (std::size_t i = 0; i < w[l].size(); ++i)
            redense_moved += pruned[l][i] && w[l].weights()[i] != 0.0f;
      }
    };
    const auto r = experiments::train(net, data, o, "dsd");
    CHECK(sparse_steps == 2 * 64 / 8);
    CHECK(redense_moved > 0);  // re-dense trains the restored weights again
    CHECK(r.rows.size() == 4);
  }
}
