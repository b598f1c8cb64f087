// The MLP example's oneDNN forward/backward against finite differences of its loss, for every
// weight and bias tensor, and its accuracy bookkeeping on a partial last batch.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <common/mlp.hpp>
#include <random>
#include <vector>

namespace {
constexpr std::size_t batch = 4;

struct Fixture {
  examples::Mlp net{{7, 5}, batch, 3};
  std::vector<float> x = std::vector<float>(batch * fashion::Split::pixels);
  std::vector<std::uint8_t> y = {3, 0, 9, 3};
  Fixture() {
    net.init(11);
    std::mt19937_64 gen(8);
    for (auto& v : x) v = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1p-53 - 0.5);
  }
  double loss() { return net.train_batch(x.data(), y.data()); }
};

// Central differences around float weights, step 2e-3 (float rounding of the loss is ~1e-7).
// Where a step moves a ReLU pre-activation across zero the loss has a kink and no difference
// quotient means anything; such points are recognised by one-sided differences that disagree,
// and skipped (at most a quarter of them may be).
void check_tensor(Fixture& f, examples::Param& p, const std::vector<float>& grad) {
  const auto w = p.weights();
  const std::size_t stride = w.size() > 40 ? w.size() / 40 : 1;
  const double center = f.loss();
  int checked = 0, kinks = 0;
  for (std::size_t i = 0; i < w.size(); i += stride) {
    const float saved = w[i];
    const float h = 2e-3f;
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
    CHECK(double(grad[i]) == doctest::Approx((up - down) / (2.0 * h)).epsilon(0.03).scale(1e-3));
    ++checked;
  }
  CHECK(checked > 0);
  CHECK(kinks * 3 <= checked);
}
}  // namespace

TEST_CASE(
    "MLP backward (oneDNN inner product, ReLU, softmax cross-entropy) matches finite differences") {
  Fixture f;
  f.loss();  // fills the gradients at the unperturbed point
  for (std::size_t l = 0; l < 3; ++l) {
    const std::vector<float> gw = f.net.weight_grad(l), gb = f.net.bias_grad(l);
    check_tensor(f, f.net.weights()[l], gw);
    check_tensor(f, f.net.biases()[l], gb);
    f.loss();
  }
}

TEST_CASE("MLP accuracy counts a partial last batch correctly") {
  examples::Mlp net({8}, 4, 3);
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
