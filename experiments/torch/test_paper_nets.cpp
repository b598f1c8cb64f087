// The paper's torchvision networks as libtorch modules (paper_nets.hpp) against torchvision 0.14
// itself: every parameter's name, shape and order equal to what Debian's python3-torchvision
// builds (torchvision_shapes.json, written at test time by tests/torch/export_torchvision.py; its
// directory in DSD_TORCHSCRIPT_DIR), the published totals, a forward pass of the right shape, and
// what dsd wraps: the convolution and FC weights, BatchNorm and biases dense, the first
// convolution excluded by name as the paper's CNN recipes do, exact prune counts. And the
// recurrent networks written from the papers' figures (paper_rnns.hpp): NeuralTalk, DeepSpeech 1
// and 2, each layer's parameter count as the tables give it.
#include "torch_test.hpp"

#include <cstdint>
#include <cstdlib>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/recipe.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "../../bench/paper_shapes.hpp"
#include "paper_nets.hpp"
#include "paper_rnns.hpp"
#include "trainable.hpp"

namespace {

/// torchvision's names and shapes, or nothing when the export was skipped (no torchvision).
std::optional<nlohmann::json> torchvision_shapes() {
  const auto dir = dsd_torch_test::torchscript_dir();
  if (!dir) return std::nullopt;
  std::ifstream f(*dir / "torchvision_shapes.json");
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

TEST_CASE("GoogLeNet's training loss weighs its auxiliary heads' losses, not their logits") {
  torch::manual_seed(5);
  auto net = experiments::paper::make_torchvision("googlenet_aux");
  auto* g = dynamic_cast<experiments::paper::GoogLeNetImpl*>(net.module.get());
  REQUIRE(g != nullptr);
  net.module->train();
  const auto x = torch::randn({2, 3, 64, 64});
  const auto y = torch::tensor({3, 7}, torch::kLong);
  torch::manual_seed(6);  // the same dropout masks for both passes
  const auto heads = g->heads(x);
  REQUIRE(heads.size() == 3);
  const auto expected = torch::nn::functional::cross_entropy(heads[0], y) +
                        0.3 * torch::nn::functional::cross_entropy(heads[1], y) +
                        0.3 * torch::nn::functional::cross_entropy(heads[2], y);
  torch::manual_seed(6);
  CHECK(net.loss(x, y).item<double>() == doctest::Approx(expected.item<double>()).epsilon(1e-6));
  net.module->eval();
  CHECK(g->heads(x).size() == 1);  // evaluation: the main head only
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

  // the full-size checkpoint: every mask and weight back exactly, into another initialisation
  const auto path = std::filesystem::temp_directory_path() /
                    ("dsd_vgg16_" + std::to_string(::getpid()) + ".safetensors");
  struct Remove {  // the 550 MB file goes whatever fails below
    std::filesystem::path path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{path};
  dsd::io::save_checkpoint(path, layers);
  torch::manual_seed(99);
  auto other = experiments::paper::make_torchvision("vgg16");
  auto loaded = dsd::torch::wrap(*other.module, {.exclude = {"features.0.weight"}});
  CHECK_FALSE(torch::equal(loaded.parameter(1), layers.parameter(1)));
  dsd::io::load_checkpoint(path, loaded);
  REQUIRE(loaded.size() == layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].name());
    CHECK(loaded[i].name() == layers[i].name());
    CHECK(loaded[i].mask() == layers[i].mask());
    CHECK(torch::equal(loaded.parameter(i), layers.parameter(i)));
  }
}

namespace {

/// Parameters per layer: the name up to its last dot ("rnn4.weight_hh_forward" -> "rnn4"), a
/// BatchNorm "X_bn" counted with its layer "X".
std::vector<std::pair<std::string, std::int64_t>> per_layer(torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const auto& p : m.named_parameters(true)) {
    std::string layer = p.key().substr(0, p.key().find('.'));
    if (layer.size() > 3 && layer.ends_with("_bn")) layer.resize(layer.size() - 3);
    if (out.empty() || out.back().first != layer) out.emplace_back(layer, 0);
    out.back().second += p.value().numel();
  }
  return out;
}

std::int64_t total_of(const std::vector<std::pair<std::string, std::int64_t>>& layers) {
  std::int64_t n = 0;
  for (const auto& l : layers) n += l.second;
  return n;
}

}  // namespace

TEST_CASE("the paper's Caffe AlexNet has BVLC's grouped layers, 60,965,224 parameters, and prunes and steps") {
  torch::manual_seed(3);
  auto net = experiments::paper::make_torchvision("alexnet_caffe");
  using L = std::vector<std::pair<std::string, std::int64_t>>;
  const auto counts = [&] {
    L out;
    for (const auto& p : net.module->named_parameters(true)) out.emplace_back(p.key(), p.value().numel());
    return out;
  }();
  CHECK(counts == L{{"conv1.weight", 34'848},     {"conv1.bias", 96},   {"conv2.weight", 307'200},
                    {"conv2.bias", 256},          {"conv3.weight", 884'736}, {"conv3.bias", 384},
                    {"conv4.weight", 663'552},    {"conv4.bias", 384},  {"conv5.weight", 442'368},
                    {"conv5.bias", 256},          {"fc6.weight", 37'748'736}, {"fc6.bias", 4'096},
                    {"fc7.weight", 16'777'216},   {"fc7.bias", 4'096},  {"fc8.weight", 4'096'000},
                    {"fc8.bias", 1'000}});
  CHECK(total_of(counts) == 60'965'224);
  // the two towers: conv2, conv4 and conv5 see half their input channels
  const auto params = net.module->named_parameters(true);
  CHECK(params["conv2.weight"].sizes().vec() == std::vector<std::int64_t>{256, 48, 5, 5});
  CHECK(params["conv4.weight"].sizes().vec() == std::vector<std::int64_t>{384, 192, 3, 3});
  CHECK(params["conv5.weight"].sizes().vec() == std::vector<std::int64_t>{256, 192, 3, 3});
  {
    // Caffe's 227 x 227 crops and torchvision's 224 x 224 both reach fc6 at 6 x 6; eval() turns
    // the dropout off, so the forward pass is a function of its input
    torch::NoGradGuard no_grad;
    net.module->eval();
    for (const std::int64_t side : {227, 224}) {
      CAPTURE(side);
      const torch::Tensor x = torch::randn({1, 3, side, side});
      const torch::Tensor out = net.forward(x);
      CHECK(out.sizes().vec() == std::vector<std::int64_t>{1, 1000});
      CHECK(torch::isfinite(out).all().item<bool>());
      CHECK(torch::equal(out, net.forward(x)));
    }
    net.module->train();
  }
  // other sides would fail inside fc6: the trainer refuses them first, naming the range
  using experiments::paper::CaffeAlexNetImpl;
  CHECK(CaffeAlexNetImpl::pool5_side(198) == 5);
  CHECK(CaffeAlexNetImpl::pool5_side(199) == 6);
  CHECK(CaffeAlexNetImpl::pool5_side(230) == 6);
  CHECK(CaffeAlexNetImpl::pool5_side(231) == 7);
  CHECK(CaffeAlexNetImpl::pool5_side(39) == 1);  // a 3/2 pool rounding up takes 2 pixels to 1
  experiments::paper::InputShape small;
  small.image = 64;
  CHECK_THROWS_WITH_AS(experiments::paper::make_trainable("alexnet_caffe", small),
                       doctest::Contains("199 to 230 pixels"), dsd::error);

  std::size_t weights = 0;  // what dsd wraps by default: every weight, no bias
  for (const auto& l : dsd::torch::wrap(*net.module)) weights += l.size();
  CHECK(weights == 60'954'656u);

  auto layers = dsd::torch::wrap(*net.module, {.exclude = {"conv1.weight"}});  // the CNN recipes' exclusion
  REQUIRE(layers.size() == 7);
  CHECK(layers[0].name() == "conv2.weight");
  auto opt = experiments::paper::make_optimizer("sgd", *net.module, 5e-4);
  const auto step = [&](int seed) {
    torch::manual_seed(seed);
    const torch::Tensor loss = net.loss(torch::randn({2, 3, 224, 224}), torch::randint(0, 1000, {2}, torch::kLong));
    opt->zero_grad();
    loss.backward();
    opt->step();
    layers.enforce(*opt);
    return loss.item<double>();
  };
  CHECK(std::isfinite(step(1)));
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  layers.enforce(*opt);
  for (const auto& l : layers) {
    CAPTURE(l.name());
    CHECK(l.size() - l.mask().count() == std::size_t(0.5 * double(l.size()) + 0.5));
  }
  CHECK(std::isfinite(step(2)));
  CHECK(dsd_torch_test::nonzero_pruned_state(layers, *opt) == 0);
  CHECK(torch::count_nonzero(params["conv1.weight"]).item<std::int64_t>() == 34'848);  // excluded: dense
}

TEST_CASE("DeepSpeech 1 has Table 6's layers; its recipe's Nesterov steps keep pruned weights at zero") {
  torch::manual_seed(2);
  experiments::paper::DeepSpeech1 ds1;
  using L = std::vector<std::pair<std::string, std::int64_t>>;
  CHECK(per_layer(*ds1) == L{{"fc1", 1'814'528}, {"fc2", 1'049'600}, {"fc3", 1'049'600},
                             {"rnn4", 3'146'752}, {"fc5", 1'049'600}, {"out", 29'725}});
  CHECK(total_of(per_layer(*ds1)) == 8'139'805);  // "8.14 M"
  auto layers = dsd::torch::wrap(ds1);  // every FC and recurrent weight; biases dense
  REQUIRE(layers.size() == 8);
  CHECK(layers[3].name() == "rnn4.weight_hh_forward");  // a module's own parameters first
  CHECK(layers[4].name() == "rnn4.weight_hh_backward");
  CHECK(layers[5].name() == "rnn4.input.weight");
  torch::optim::SGD opt(ds1->parameters(), torch::optim::SGDOptions(8e-4).momentum(0.9).nesterov(true));
  const auto step = [&](int seed) {
    torch::manual_seed(seed);
    const auto x = torch::randn({12, 2, 11 * 161});  // 12 frames of 11 x 161 context, batch 2
    const auto targets = torch::randint(1, 29, {2, 4}, torch::kLong);
    const auto loss = torch::nn::functional::ctc_loss(ds1->forward(x), targets, torch::full({2}, 12, torch::kLong),
                                                      torch::full({2}, 4, torch::kLong));
    opt.zero_grad();
    loss.backward();
    opt.step();
    layers.enforce(opt);
    return loss.item<double>();
  };
  CHECK(std::isfinite(step(1)));
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});  // the recipe's first round
  layers.enforce(opt);
  for (const auto& l : layers) CHECK(l.size() - l.mask().count() == std::size_t(0.5 * double(l.size()) + 0.5));
  CHECK(std::isfinite(step(2)));
  CHECK(std::isfinite(step(3)));
  CHECK(dsd_torch_test::nonzero_pruned_state(layers, opt) == 0);
}

TEST_CASE("DeepSpeech 2 has Table 8's layers (its output's 95,054 aside) and runs a spectrogram") {
  torch::manual_seed(3);
  experiments::paper::DeepSpeech2 ds2;
  using L = std::vector<std::pair<std::string, std::int64_t>>;
  L expected{{"conv1", 19'616}, {"conv2", 239'168}, {"rnn1", 8'507'840}};
  for (int i = 2; i <= 7; ++i) expected.emplace_back("rnn" + std::to_string(i), 9'296'320);
  expected.emplace_back("fc", 3'101'120);
  expected.emplace_back("out", 95'094);  // Table 8: 95,054, which no layer over 1760 inputs has
  CHECK(per_layer(*ds2) == expected);
  CHECK(total_of(per_layer(*ds2)) == 67'740'758);  // "67.74 M"
  auto layers = dsd::torch::wrap(ds2, {.exclude = {"conv1.weight", "conv2.weight"}});  // the recipe's conv*
  CHECK(layers.size() == 7 * 3 + 2);  // per RNN layer its input and two recurrent matrices; fc, out
  torch::NoGradGuard no_grad;
  ds2->eval();
  const torch::Tensor out = ds2->forward(torch::randn({2, 1, 161, 15}));
  CHECK(out.sizes().vec() == std::vector<std::int64_t>{8, 2, 54});  // ceil(15 / 2) frames
  CHECK(torch::isfinite(out).all().item<bool>());
}

TEST_CASE("NeuralTalk's LSTM generator has Karpathy's matrices and the paper's 6.8 M") {
  torch::manual_seed(4);
  experiments::paper::NeuralTalk talk;
  using L = std::vector<std::pair<std::string, std::int64_t>>;
  CHECK(per_layer(*talk) == L{{"We", 4096 * 512}, {"be", 512}, {"Ws", 2538 * 512}, {"WLSTM", 2'099'200},
                              {"Wd", 512 * 2538}, {"bd", 2538}});
  CHECK(total_of(per_layer(*talk)) == 6'798'314);
  // The recipe prunes every matrix but the word embedding Ws.
  auto layers = dsd::torch::wrap(talk, {.select = [](const std::string&, const torch::Tensor& p) { return p.dim() >= 2; },
                                        .exclude = {"Ws"}});
  REQUIRE(layers.size() == 3);
  CHECK(layers[1].name() == "WLSTM");
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.8});
  CHECK(layers.at("WLSTM").mask().count() == 2'099'200 - 1'679'360);
  torch::NoGradGuard no_grad;
  const auto logits = talk->forward(torch::randn({2, 4096}), torch::randint(0, 2538, {6, 2}, torch::kLong));
  CHECK(logits.sizes().vec() == std::vector<std::int64_t>{6, 2, 2538});
}

TEST_CASE("DeepSpeech 1's recipe through dsd::run: each phase's rate reaches the optimizer, round 2 "
          "prunes 25 %, re-dense restarts the pruned weights and momentum at zero and they move") {
  torch::manual_seed(3);
  const auto ds1 = experiments::paper::make_trainable("deepspeech1", {.batch = 2, .frames = 12});
  auto layers = dsd::torch::wrap(*ds1.module, ds1.wrap);
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.name());
  const auto recipe = dsd::io::read_recipe(std::string(DSD_RECIPES_DIR) + "/deepspeech1-iclr2017.json");
  dsd::Plan plan = recipe.plan(names);
  REQUIRE(plan.phases.size() == 5);
  for (auto& p : plan.phases) p.epochs = 1;  // one epoch of one step each
  torch::optim::SGD opt(ds1.module->parameters(), torch::optim::SGDOptions(1.0).momentum(0.9).nesterov(true));
  struct Seen {
    dsd::Phase phase;
    int round;
    double lr;                        ///< the optimizer's rate during the phase
    std::vector<std::size_t> pruned;  ///< per layer
    std::size_t nonzero_pruned = 0;   ///< after the step (sparse: must be 0)
    std::size_t restarted = 0, was_pruned = 0, moved = 0, with_gradient = 0;  ///< re-dense: the last sparse mask's
  };
  std::vector<Seen> seen;
  std::vector<dsd::BitMask> last_sparse;
  dsd::Callbacks cb;
  cb.set_lr = dsd::torch::lr_setter(opt);
  cb.evaluate = [] { return 0.0; };
  cb.train_epoch = [&](const dsd::EpochContext& ctx) {
    Seen s{ctx.phase, ctx.round, static_cast<torch::optim::SGDOptions&>(opt.param_groups()[0].options()).lr(), {}};
    for (const auto& l : layers) s.pruned.push_back(l.size() - l.mask().count());
    const bool redense = ctx.phase == dsd::Phase::redense;
    if (redense) {  // entering re-dense: what the last sparse phase pruned is zero, momentum too
      for (std::size_t i = 0; i < layers.size(); ++i) {
        const dsd::BitMask& m = last_sparse[i];
        s.was_pruned += m.size() - m.count();
        const auto key = c10::guts::to_string(layers.parameter(i).unsafeGetTensorImpl());
        const auto& momentum = static_cast<torch::optim::SGDParamState&>(*opt.state().at(key)).momentum_buffer();
        s.restarted += (m.size() - m.count()) - dsd_torch_test::nonzero_where_pruned(layers.parameter(i), m);
        CHECK(dsd_torch_test::nonzero_where_pruned(momentum, m) == 0);
      }
    }
    const auto [x, targets] = ds1.batch(100 + ctx.phase_index);  // 12 frames, batch 2
    opt.zero_grad();
    const auto loss = ds1.loss(x, targets);
    loss.backward();
    opt.step();
    layers.enforce(opt);
    s.nonzero_pruned = dsd_torch_test::nonzero_pruned_state(layers, opt);
    if (ctx.phase == dsd::Phase::sparse) {
      last_sparse.clear();
      for (const auto& l : layers) last_sparse.push_back(l.mask());
    }
    if (redense)
      for (std::size_t i = 0; i < layers.size(); ++i) {
        s.moved += dsd_torch_test::nonzero_where_pruned(layers.parameter(i), last_sparse[i]);
        s.with_gradient += dsd_torch_test::nonzero_where_pruned(layers.parameter(i).grad(), last_sparse[i]);
      }
    seen.push_back(s);
    return loss.item<double>();
  };
  dsd::run(layers, plan, dsd::UniformSparsity{}, cb);
  REQUIRE(seen.size() == 5);
  // Table 6's rates, each in the optimizer while its phase trains
  const double rates[] = {8e-4, 5e-4, 3e-4, 1e-4, 3e-5};
  const dsd::Phase phases[] = {dsd::Phase::dense, dsd::Phase::sparse, dsd::Phase::redense, dsd::Phase::sparse,
                               dsd::Phase::redense};
  const double sparsity[] = {0.0, 0.5, 0.0, 0.25, 0.0};
  for (std::size_t p = 0; p < 5; ++p) {
    CAPTURE(p);
    CHECK(seen[p].phase == phases[p]);
    CHECK(seen[p].round == (p < 3 ? 1 : 2));
    CHECK(seen[p].lr == rates[p]);
    CHECK(seen[p].nonzero_pruned == 0);
    for (std::size_t i = 0; i < layers.size(); ++i)
      CHECK(seen[p].pruned[i] == std::size_t(sparsity[p] * double(layers[i].size()) + 0.5));
  }
  // Re-dense: every pruned weight restarted at zero (its momentum too), and one Nesterov step from
  // zero moved exactly those whose gradient is nonzero (-lr (g + 0.9 g)): most of them.
  for (const std::size_t p : {2u, 4u}) {
    CAPTURE(p);
    CHECK(seen[p].was_pruned > 0);
    CHECK(seen[p].restarted == seen[p].was_pruned);
    CHECK(seen[p].moved == seen[p].with_gradient);
    CHECK(seen[p].moved > seen[p].was_pruned / 2);
  }
}

TEST_CASE("the GPU benchmark's tensor lists (bench/paper_shapes.hpp) are what dsd wraps in each network") {
  REQUIRE(dsd_bench::paper_nets().size() == experiments::paper::trainable_names().size());
  for (std::size_t k = 0; k < dsd_bench::paper_nets().size(); ++k) {
    const dsd_bench::PaperNet& expected = dsd_bench::paper_nets()[k];
    CAPTURE(expected.name);
    CHECK(expected.name == experiments::paper::trainable_names()[k]);
    const auto net = experiments::paper::make_trainable(expected.name, {.batch = 1});
    const auto layers = dsd::torch::wrap(*net.module, net.wrap);
    REQUIRE(layers.size() == expected.tensors.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
      CHECK(layers[i].name() == expected.tensors[i].name);
      CHECK(layers[i].size() == expected.tensors[i].size);
    }
  }
}
