// The README's "wrap an existing trainer" example, compiled and run as a test so it cannot rot.
// The "existing trainer" here is a tiny hand-written linear regression: y = W2 relu(W1 x), trained
// on a synthetic teacher; everything between the markers is what a user adds to use DSD. Look
// for dsd::Masked (views of the buffers), MomentumSgd::step, dsd::Callbacks with
// set_lr = dsd::lr_of(opt), dsd::run and dsd::print_report.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include <dsd/dsd.hpp>

namespace {
constexpr std::size_t in = 16, hid = 32, n = 256;
std::vector<float> w1(hid*in), w2(hid), g1(w1.size()), g2(w2.size());
std::vector<float> xs(n*in), ys(n);

double forward_backward() {  // the user's own code: mean squared error and its gradient
  std::fill(g1.begin(), g1.end(), 0.0f);
  std::fill(g2.begin(), g2.end(), 0.0f);
  double loss = 0;
  std::vector<float> h(hid);
  for (std::size_t s = 0; s < n; ++s) {
    const float* x = &xs[s * in];
    float y = 0;
    for (std::size_t j = 0; j < hid; ++j) {
      float a = 0;
      for (std::size_t i = 0; i < in; ++i) a += w1[j * in + i] * x[i];
      h[j] = a > 0 ? a : 0;
      y += w2[j] * h[j];
    }
    const float e = y - ys[s];
    loss += double(e) * e / n;
    for (std::size_t j = 0; j < hid; ++j) {
      g2[j] += 2 * e * h[j] / n;
      if (h[j] > 0)
        for (std::size_t i = 0; i < in; ++i) g1[j * in + i] += 2 * e * w2[j] * x[i] / n;
    }
  }
  return loss;
}
}  // namespace

int main() {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (auto& v : xs) v = normal(gen);
  for (auto& v : w1) v = normal(gen);
  for (auto& v : w2) v = normal(gen);
  for (std::size_t s = 0; s < n; ++s) ys[s] = std::tanh(xs[s * in] - 2 * xs[s * in + 1]);

  // example-begin wrap
  dsd::Masked fc1(w1, "fc1"), fc2(w2, "fc2");  // views of your buffers, no copies
  dsd::MomentumSgd opt{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4};

  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_of(opt);  // the schedule sets opt.lr every epoch (x0.1 when re-densing)
  cb.train_epoch = [&](const dsd::EpochContext&) {
    double loss = 0;
    for (int step = 0; step < 50; ++step) {
      loss = forward_backward();  // your forward/backward fills g1, g2
      opt.step(fc1, g1);          // update with the mask fused in
      opt.step(fc2, g2);
    }
    return loss;
  };
  cb.evaluate = [&] { return -forward_backward(); };  // higher is better
  cb.progress = &std::cout;

  const dsd::Report report =
      dsd::run(dsd::layers(fc1, fc2),
               {.dense_epochs = 4, .sparse_epochs = 4, .redense_epochs = 4, .lr = 0.05},
               dsd::UniformSparsity{.sparsity = 0.5}, cb);
  dsd::print_report(std::cout, report);
  // example-end wrap

  const double final_loss = -report.final_accuracy();
  std::printf("final loss %.5f (after dense phase %.5f)\n", final_loss,
              -report.phases[0].accuracy_end);
  return final_loss < -report.phases[0].accuracy_start ? 0 : 1;  // it trained
}
