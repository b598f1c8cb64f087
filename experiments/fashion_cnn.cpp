// DSD on Fashion-MNIST with a LeNet-5 style CNN (2 conv + 2 max-pool + 3 FC) on oneDNN
// primitives; the convolution and FC weights are pruned.
//   fashion_cnn --mode dsd --epochs 4,4,4 --sparsity 0.5 --lr 0.03
//   fashion_cnn --compare            (dense baseline and DSD side by side)
#include <memory>

#include "common/net.hpp"
#include "common/trainer.hpp"

int main(int argc, char** argv) {
  std::vector<int> widths = {6, 16, 120, 84};
  experiments::Options defaults;
  defaults.epochs = {4, 4, 4};
  defaults.lr = 0.03;  // best validation accuracy of 0.01, 0.03, 0.1 (docs/results.md)
  return experiments::main_with(
      argc, argv, "Dense-Sparse-Dense training of a LeNet-5 CNN on Fashion-MNIST (oneDNN)",
      defaults,
      [&](const experiments::Options& o) {
        return std::make_unique<experiments::Net>(
            experiments::lenet5(widths), o.batch, 1000);
      },
      [&](CLI::App& app) {
        app.add_option("--widths", widths, "conv1,conv2 channels and fc1[,fc2] sizes (3 values: one hidden FC layer)")
            ->delimiter(',')
            ->expected(3, 4)
            ->check(CLI::PositiveNumber);
      });
}
