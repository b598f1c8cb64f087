// DSD on Fashion-MNIST with an MLP (LeNet-300-100 by default) trained end to end on the GPU:
// cuBLAS products, dsd's device layers, one-launch masked optimizers, device pruning. The same
// flags and output as fashion_mlp.
//   fashion_mlp_cuda --mode dsd --epochs 4,4,4 --sparsity 0.5
#include <memory>

#include "common/cuda_mlp.cuh"
#include "common/trainer.hpp"

int main(int argc, char** argv) {
  std::vector<std::size_t> hidden = {300, 100};
  return experiments::main_with(
      argc, argv, "Dense-Sparse-Dense training of an MLP on Fashion-MNIST (CUDA)", {},
      [&](const experiments::Options& o) {
        return std::make_unique<experiments::CudaMlp>(hidden, o.batch, 1000);
      },
      [&](CLI::App& app) {
        app.add_option("--hidden", hidden, "hidden layer sizes, e.g. 300,100 or 1000,1000")
            ->delimiter(',');
      });
}
