// dsd::torch::wrap(torch::jit::Module&): torchvision models exported from Python by Debian's
// python3-torch (export_torchvision.py, run by ctest first; its directory in DSD_TORCHSCRIPT_DIR):
// ResNet-18 scripted and SqueezeNet 1.0 traced. Wrapping takes exactly the weights Python names
// (BatchNorm and biases dense), exclusions by Python's names, exact prune counts, torch::optim
// steps and dsd's fused step keeping pruned weights and their optimizer state at zero, re-dense.
#include "torch_test.hpp"
#include <torch/script.h>

#include <cstdint>
#include <cstdlib>
#include <dsd/dsd.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Exported {
  torch::jit::Module module;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> parameters;  // Python's
  std::int64_t total = 0;
};

/// The export of `name`, or nothing when export_torchvision.py skipped (no python3-torchvision).
std::optional<Exported> load(const std::string& name) {
  const auto dir = dsd_torch_test::torchscript_dir();
  if (!dir) return std::nullopt;
  const std::filesystem::path base = *dir / name;
  std::ifstream f(base.string() + ".json");
  REQUIRE_MESSAGE(f.good(), "no ", base.string(), ".json");
  const auto j = nlohmann::json::parse(f);
  Exported e{torch::jit::load(base.string() + ".pt"), {}, j.at("total").get<std::int64_t>()};
  for (const auto& p : j.at("parameters"))
    e.parameters.emplace_back(p.at(0).get<std::string>(), p.at(1).get<std::vector<std::int64_t>>());
  return e;
}

/// What the default selection must take: Python's parameters of 2+ dimensions whose last name
/// component starts with "weight".
std::vector<std::string> expected_weights(const Exported& e) {
  std::vector<std::string> out;
  for (const auto& [name, shape] : e.parameters) {
    const std::string last = name.substr(name.rfind('.') + 1);
    if (shape.size() >= 2 && last.rfind("weight", 0) == 0) out.push_back(name);
  }
  return out;
}

using dsd_torch_test::nonzero_where_pruned;

std::vector<torch::Tensor> parameters_of(const torch::jit::Module& m) { return dsd::torch::unique_parameters(m); }

/// One forward and backward pass on a batch of 2 random 64x64 images (the networks pool
/// adaptively) against random labels.
void backward(torch::jit::Module& m, int seed) {
  torch::manual_seed(seed);
  for (auto p : m.parameters()) p.mutable_grad() = torch::Tensor();
  const auto x = torch::randn({2, 3, 64, 64});
  const auto y = torch::randint(0, 1000, {2}, torch::kLong);
  torch::nn::functional::cross_entropy(m.forward({x}).toTensor(), y).backward();
}

}  // namespace

TEST_CASE("a scripted torchvision ResNet-18: Python's names, exact prunes, torch::optim kept masked") {
  auto loaded = load("resnet18");
  if (!loaded) return;
  Exported& e = *loaded;
  std::int64_t total = 0;
  for (const auto& p : e.module.parameters()) total += p.numel();
  CHECK(total == 11'689'512);
  CHECK(total == e.total);

  auto layers = dsd::torch::wrap(e.module);
  const auto expected = expected_weights(e);
  REQUIRE(expected.size() == 21);  // 20 convolutions and fc; BatchNorm and biases stay dense
  REQUIRE(layers.size() == expected.size());
  std::size_t wrapped = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(expected[i]);
    CHECK(layers[i].name() == expected[i]);
    wrapped += layers[i].size();
  }
  CHECK(layers[0].name() == "conv1.weight");
  CHECK(layers[0].shape().outer == 64);
  CHECK(layers[0].shape().inner == 3 * 7 * 7);
  CHECK(layers.at("fc.weight").shape().inner == 512);
  CHECK(wrapped == 11'678'912);  // 11,689,512 less BatchNorm's 9,600 and fc.bias's 1,000

  // the paper's CNN recipes keep the first convolution dense
  auto no_first = dsd::torch::wrap(e.module, {.exclude = {"conv1.weight"}});
  CHECK(no_first.size() == 20);
  CHECK(no_first[0].name() == "layer1.0.conv1.weight");
  CHECK_THROWS_WITH_AS((void)dsd::torch::wrap(e.module, {.exclude = {"conv9.weight"}}),
                       doctest::Contains("\"conv9.weight\" is not a parameter of the module"), dsd::error);

  torch::optim::SGD opt(parameters_of(e.module), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  e.module.train();
  backward(e.module, 1);
  opt.step();  // a dense step: momentum everywhere
  layers.enforce(opt);
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  layers.enforce(opt);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].name());
    CHECK(layers[i].size() - layers[i].mask().count() == std::size_t(0.5 * double(layers[i].size()) + 0.5));
  }
  for (int step = 2; step < 4; ++step) {  // two sparse steps of the torch optimizer
    backward(e.module, step);
    opt.step();
    layers.enforce(opt);
  }
  CHECK(dsd_torch_test::nonzero_pruned_state(layers, opt) == 0);
  // an optimizer over another copy of the model holds none of the wrapped tensors: refused
  auto other = load("resnet18");
  torch::optim::SGD elsewhere(parameters_of(other->module), torch::optim::SGDOptions(0.01).momentum(0.9));
  CHECK_THROWS_WITH_AS(layers.enforce(elsewhere), doctest::Contains("the optimizer holds none of the 21 wrapped tensors"),
                       dsd::error);
  // re-dense: the pruned weights restart at zero and move
  const dsd::BitMask mask = layers.at("layer4.1.conv2.weight").mask();
  dsd::redense(layers);
  backward(e.module, 5);
  opt.step();
  layers.enforce(opt);
  const float* w = layers.at("layer4.1.conv2.weight").weights().data();
  std::size_t moved = 0;
  for (std::size_t i = 0; i < mask.size(); ++i) moved += !mask.test(i) && w[i] != 0.0f;
  CHECK(moved > mask.size() / 4);
}

TEST_CASE("a traced torchvision SqueezeNet 1.0: every convolution wrapped, dsd's fused step") {
  auto loaded = load("squeezenet1_0");
  if (!loaded) return;
  Exported& e = *loaded;
  std::int64_t total = 0;
  for (const auto& p : e.module.parameters()) total += p.numel();
  CHECK(total == 1'248'424);
  auto layers = dsd::torch::wrap(e.module);
  const auto expected = expected_weights(e);
  REQUIRE(expected.size() == 26);  // conv1, 8 fire modules of 3, the classifier's convolution
  REQUIRE(layers.size() == expected.size());
  for (std::size_t i = 0; i < layers.size(); ++i) CHECK(layers[i].name() == expected[i]);
  CHECK(layers[25].name() == "classifier.1.weight");
  dsd::prune(layers, dsd::GlobalSparsity{.sparsity = 0.75});
  std::size_t n = 0, kept = 0;
  for (const auto& l : layers) n += l.size(), kept += l.mask().count();
  CHECK(n - kept == std::size_t(0.75 * double(n) + 0.5));
  e.module.train();
  const dsd::MomentumSgd opt{.lr = 0.01, .momentum = 0.9};
  for (int step = 0; step < 2; ++step) {
    backward(e.module, 10 + step);
    layers.step(opt);
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].name());
    CHECK(nonzero_where_pruned(layers.parameter(i), layers[i].mask()) == 0);
  }
}

TEST_CASE("a TorchScript tied weight is wrapped once; unique_parameters lists it once") {
  const auto dir = dsd_torch_test::torchscript_dir();
  if (!dir) return;
  auto m = torch::jit::load((*dir / "tied.pt").string());
  std::size_t listed = 0;
  for (const auto& p : m.parameters()) listed += p.defined();
  CHECK(listed == 2);  // libtorch lists the tied tensor under both names
  const auto unique = dsd::torch::unique_parameters(m);
  REQUIRE(unique.size() == 1);
  auto layers = dsd::torch::wrap(m);
  REQUIRE(layers.size() == 1);
  CHECK(layers[0].name() == "embed.weight");
  CHECK(layers.aliases(0) == std::vector<std::string>{"decode.weight"});
  torch::optim::SGD opt(unique, torch::optim::SGDOptions(1.0));
  const auto before = layers.parameter(0).clone();
  const auto x = torch::tensor({1, 2, 3}, torch::kLong);
  m.forward({x}).toTensor().sum().backward();
  opt.step();  // one step: the tensor moves by lr x its gradient, once
  CHECK(torch::allclose(layers.parameter(0), before - layers.parameter(0).grad()));
}
