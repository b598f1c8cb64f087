// dsd::torch outside the dsd tree: half of a libtorch layer's weights pruned through the adapter.
#include <torch/torch.h>

#include <cstdio>
#include <dsd/adapters/torch.hpp>
#include <dsd/dsd.hpp>

int main() {
  ::torch::manual_seed(1);
  ::torch::nn::Linear fc(8, 4);
  auto layers = dsd::torch::wrap(*fc);  // "weight" (not the bias)
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  const auto zeros = (fc->weight == 0).sum().item<std::int64_t>();
  const bool ok = layers.size() == 1 && layers[0].mask().count() == 16 && zeros == 16;
  std::printf("%s\n", ok ? "torch component OK" : "torch component FAILED");
  return ok ? 0 : 1;
}
