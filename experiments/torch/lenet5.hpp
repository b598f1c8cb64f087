#pragma once
// LeNet-5 as a torch::nn::Module, shared by experiments/torch/fashion_torch.cpp and
// bench/bench_torch.cpp.
#include <torch/torch.h>

namespace experiments {

/// LeNet-5 as in experiments/fashion_cnn: conv 5x5 (pad 2) - pool - conv 5x5 - pool - 3 FC.
struct LeNet5Impl : torch::nn::Module {
  torch::nn::Sequential features{
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)), torch::nn::ReLU(),
      torch::nn::MaxPool2d(2), torch::nn::Conv2d(6, 16, 5), torch::nn::ReLU(),
      torch::nn::MaxPool2d(2)};
  torch::nn::Sequential classifier{torch::nn::Linear(16 * 5 * 5, 120), torch::nn::ReLU(),
                                   torch::nn::Linear(120, 84), torch::nn::ReLU(),
                                   torch::nn::Linear(84, 10)};
  LeNet5Impl() {
    register_module("features", features);
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier->forward(features->forward(x).flatten(1));
  }
};
TORCH_MODULE(LeNet5);

}  // namespace experiments
