// The paper's torchvision networks as libtorch modules (paper_nets.hpp) against torchvision 0.14
// itself: every parameter's name, shape and order equal to what Debian's python3-torchvision
// builds (torchvision_shapes.json, written at test time by tests/torch/export_torchvision.py; its
// directory in DSD_TORCHSCRIPT_DIR), the published totals, a forward pass of the right shape, and
// what dsd wraps: the convolution and FC weights, BatchNorm and biases dense, the first
// convolution excluded by name as the paper's CNN recipes do, exact prune counts.
#include <dsd/adapters/torch.hpp>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <dsd/dsd.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "paper_nets.hpp"

namespace {

/// torchvision's names and shapes, or nothing when the export was skipped (no torchvision): the
/// test then says "skipped", which ctest reports as a skip.
std::optional<nlohmann::json> torchvision_shapes() {
  const char* dir = std::getenv("DSD_TORCHSCRIPT_DIR");
  REQUIRE_MESSAGE(dir != nullptr, "DSD_TORCHSCRIPT_DIR is not set (ctest sets it)");
  if (!std::filesystem::exists(std::filesystem::path(dir) / "exported")) {
    std::cout << "skipped: no TorchScript exports in " << dir << " (python3-torchvision missing)\n";
    return std::nullopt;
  }
  std::ifstream f(std::filesystem::path(dir) / "torchvision_shapes.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

struct Expected {
  const char* name;
  std::int64_t total;
  std::size_t weights;       ///< tensors dsd's default selection wraps
  const char* first_weight;  ///< the first convolution, which the CNN recipes keep dense
};

}  // namespace

TEST_CASE("the paper's torchvision networks match torchvision 0.14 parameter by parameter") {
  const auto shapes = torchvision_shapes();
  if (!shapes) return;
  const Expected nets[] = {{"alexnet", 61'100'840, 8, "features.0.weight"},
                           {"vgg16", 138'357'544, 16, "features.0.weight"},
                           {"googlenet", 6'624'904, 58, "conv1.conv.weight"},
                           {"googlenet_aux", 13'004'888, 64, "conv1.conv.weight"},
                           {"resnet18", 11'689'512, 21, "conv1.weight"},
                           {"resnet50", 25'557'032, 54, "conv1.weight"},
                           {"resnet152", 60'192'808, 156, "conv1.weight"},
                           {"squeezenet1_0", 1'248'424, 26, "features.0.weight"}};
  for (const Expected& e : nets) {
    CAPTURE(e.name);
    torch::manual_seed(1);
    auto net = experiments::paper::make_torchvision(e.name);
    const auto python = shapes->at(e.name).at("parameters");
    const auto params = net.module->named_parameters(/*recurse=*/true);
    REQUIRE(params.size() == python.size());
    std::int64_t total = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::string name = python[i].at(0).get<std::string>();
      CAPTURE(name);
      CHECK(params[i].key() == name);
      CHECK(params[i].value().sizes().vec() == python[i].at(1).get<std::vector<std::int64_t>>());
      total += params[i].value().numel();
    }
    CHECK(total == e.total);
    CHECK(total == shapes->at(e.name).at("total").get<std::int64_t>());

    auto layers = dsd::torch::wrap(*net.module);
    CHECK(layers.size() == e.weights);
    CHECK(layers[0].name() == e.first_weight);
    auto recipe = dsd::torch::wrap(*net.module, {.exclude = {e.first_weight}});
    CHECK(recipe.size() == e.weights - 1);
    CHECK(recipe[0].name() != e.first_weight);

    // torchvision's forward pass: 1000 logits (a small image: the networks pool adaptively)
    torch::NoGradGuard no_grad;
    net.module->eval();
    const torch::Tensor out = net.forward(torch::randn({1, 3, 64, 64}));
    CHECK(out.sizes().vec() == std::vector<std::int64_t>{1, 1000});
    CHECK(torch::isfinite(out).all().item<bool>());
  }
}

TEST_CASE("one prune of VGG-16's 138 M weights removes exactly round(s n) of each layer") {
  if (!torchvision_shapes()) return;
  auto net = experiments::paper::make_torchvision("vgg16");
  auto layers = dsd::torch::wrap(*net.module, {.exclude = {"features.0.weight"}});
  REQUIRE(layers.size() == 15);
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.7});
  std::size_t n = 0;
  for (const auto& l : layers) {
    CAPTURE(l.name());
    CHECK(l.size() - l.mask().count() == std::size_t(0.7 * double(l.size()) + 0.5));
    n += l.size();
  }
  CHECK(n == 138'357'544 - 1'728 - 13'416);  // less features.0.weight and every bias
  CHECK(layers.at("classifier.0.weight").size() == 25088u * 4096u);
}
