// DSD on Fashion-MNIST with an MLP (LeNet-300-100 by default) trained on oneDNN primitives.
//   fashion_mlp --mode dsd --epochs 4,4,4 --sparsity 0.5
//   fashion_mlp --compare            (dense baseline and DSD side by side)
#include <memory>

#include "common/net.hpp"
#include "common/trainer.hpp"

int main(int argc, char** argv) {
  std::vector<std::size_t> hidden = {300, 100};
  return experiments::main_with(
      argc, argv, "Dense-Sparse-Dense training of an MLP on Fashion-MNIST (oneDNN)", {},
      [&](const experiments::Options& o) {
        return std::make_unique<experiments::Net>(experiments::mlp(hidden), o.batch, 1000);
      },
      [&](CLI::App& app) {
        app.add_option("--hidden", hidden, "hidden layer sizes, e.g. 300,100 or 1000,1000")
            ->delimiter(',');
      });
}
