// dsd_bench_torch: what dsd adds to an ordinary libtorch training step, measured in one binary.
//
//   step/plain         zero_grad, forward, backward, torch::optim::SGD step (momentum 0.9)
//   step/enforce       the same + layers.enforce(opt) (weights and momentum masked), 50 % pruned
//   step/dsd_fused     the same, but dsd::MomentumSgd steps the wrapped weights from p.grad()
//                      (mask fused in) and torch's SGD only the biases
//   update/torch, update/torch+enforce, update/dsd_fused: the optimizer part alone (torch's SGD
//                      without and with dsd's masking, or dsd's fused step) on one Linear layer
//                      of N inputs x N outputs (N = 512 ... 4096), 50 % pruned, gradients given
//
//   dsd_bench_torch [--threads=N] [google-benchmark flags]   (default: all cores)
// Compare rows of one run only; the ratio step/enforce : step/plain is what DSD costs an epoch.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <dsd/adapters/torch.hpp>
#include <dsd/dsd.hpp>
#include <string>
#include <vector>

#include "../experiments/torch/lenet5.hpp"

namespace {

enum class Variant { plain, enforce, dsd_fused };

/// Biases and other parameters dsd does not wrap (stepped by torch in the dsd_fused variant).
std::vector<torch::Tensor> unwrapped(torch::nn::Module& m) {
  std::vector<torch::Tensor> rest;
  for (const auto& p : m.named_parameters())
    if (p.value().dim() < 2) rest.push_back(p.value());
  return rest;
}

void lenet_step(benchmark::State& state, Variant variant) {
  torch::manual_seed(1);
  experiments::LeNet5 model;
  const auto x = torch::randn({64, 1, 28, 28});
  const auto y = torch::randint(0, 10, {64});
  const auto options = torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4);
  torch::optim::SGD all(model->parameters(), options), rest(unwrapped(*model), options);
  auto layers = dsd::torch::wrap(model);
  if (variant != Variant::plain) dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  const dsd::MomentumSgd fused{.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4};
  for (auto _ : state) {
    model->zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    if (variant == Variant::dsd_fused) {
      layers.step(fused);
      rest.step();
    } else {
      all.step();
      if (variant == Variant::enforce) layers.enforce(all);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
  state.counters["threads"] = torch::get_num_threads();
}

enum class Update { torch_only, torch_enforce, dsd_fused };

void linear_update(benchmark::State& state, Update update) {
  const auto n = state.range(0);
  torch::manual_seed(2);
  torch::nn::Linear fc(torch::nn::LinearOptions(n, n).bias(false));
  fc->weight.mutable_grad() = torch::randn({n, n}) * 1e-3;
  torch::optim::SGD opt(fc->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto layers = dsd::torch::wrap(fc);
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  const dsd::MomentumSgd fused{.lr = 0.01, .momentum = 0.9};
  for (auto _ : state) {
    if (update == Update::dsd_fused) {
      layers.step(fused);
    } else {
      opt.step();
      if (update == Update::torch_enforce) layers.enforce(opt);
    }
  }
  // STREAM-style bytes: weights, gradient and momentum read, weights and momentum written.
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * n * n * 5 * 4);
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--threads=", 0) == 0)
      torch::set_num_threads(std::stoi(a.substr(10)));
    else
      rest.push_back(argv[i]);
  }
  for (const auto& [name, v] : {std::pair{"step/plain", Variant::plain},
                                {"step/enforce", Variant::enforce},
                                {"step/dsd_fused", Variant::dsd_fused}})
    benchmark::RegisterBenchmark(("lenet5/" + std::string(name)).c_str(),
                                 [v = v](benchmark::State& s) { lenet_step(s, v); })
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  for (const auto& [name, u] : {std::pair{"update/torch", Update::torch_only},
                                {"update/torch+enforce", Update::torch_enforce},
                                {"update/dsd_fused", Update::dsd_fused}})
    benchmark::RegisterBenchmark(name, [u = u](benchmark::State& s) { linear_update(s, u); })
        ->Arg(512)
        ->Arg(1024)
        ->Arg(2048)
        ->Arg(4096)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
