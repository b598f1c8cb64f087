// dsd::torch: torch::Tensor parameters, module wrapping, torch::optim state kept masked, the
// schedule's lr in torch optimizers, dsd's fused optimizers from p.grad(), checkpoints.
#include "torch_test.hpp"

#include <cstdint>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace {

/// A small net with nested names, a BatchNorm and biases: what `wrap` must tell apart.
struct NetImpl : torch::nn::Module {
  torch::nn::Sequential features{torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)),
                                 torch::nn::BatchNorm2d(4), torch::nn::ReLU()};
  torch::nn::Linear head{4 * 6 * 6, 5};
  NetImpl() {
    register_module("features", features);
    register_module("head", head);
  }
  torch::Tensor forward(torch::Tensor x) {
    return head->forward(features->forward(x).flatten(1));
  }
};
TORCH_MODULE(Net);

std::vector<std::string> names_of(const dsd::torch::Layers<float>& layers) {
  std::vector<std::string> n;
  for (const auto& l : layers) n.push_back(l.name());
  return n;
}

using dsd_torch_test::nonzero_where_pruned;

/// One forward/backward of `net` on a fixed batch.
void backward(Net& net, int seed) {
  torch::manual_seed(static_cast<std::uint64_t>(seed));
  const auto x = torch::randn({8, 1, 8, 8});
  const auto y = torch::randint(0, 5, {8});
  net->zero_grad();
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
}

}  // namespace

TEST_CASE("tensor_view is a view of a torch tensor's storage with the reduction dimension inner") {
  auto conv = torch::randn({6, 3, 5, 5});
  dsd::Masked layer(dsd::torch::tensor_view<float>(conv, "conv"), "conv");
  CHECK(layer.weights().data() == conv.data_ptr<float>());
  CHECK(layer.shape() == dsd::Shape{6, 75});
  dsd::prune(layer, 0.5);
  CHECK(conv.eq(0).sum().item<std::int64_t>() == 225);  // pruned in place, no copy
  auto bias = torch::zeros({7}, torch::kDouble);
  CHECK(dsd::Masked(dsd::torch::tensor_view<double>(bias), "b").shape() == dsd::Shape{1, 7});
  static_assert(dsd::parameter_tensor<dsd::torch::tensor_view<float>>);
  static_assert(dsd::is_view_v<dsd::torch::tensor_view<float>>);
}

TEST_CASE("tensors dsd cannot view are refused with a message naming the problem") {
  using V = dsd::torch::tensor_view<float>;
  const auto m = torch::randn({4, 6});
  CHECK_THROWS_WITH_AS(V(m.t(), "fc.weight"),
                       "dsd: torch tensor \"fc.weight\" is not contiguous; call .contiguous() on "
                       "the parameter before training",
                       dsd::error);
  CHECK_THROWS_WITH_AS(V(m.to(torch::kDouble), "w"),
                       "dsd: torch tensor \"w\" has dtype Double, expected Float", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::torch::tensor_view<double>(torch::ones({3}, torch::kInt), "i"),
                       "dsd: torch tensor \"i\" has dtype Int, expected Double", dsd::error);
  CHECK_THROWS_WITH_AS(V(m.to_sparse(), "s"),
                       "dsd: torch tensor \"s\" has layout Sparse; dsd views dense (strided) "
                       "tensors only",
                       dsd::error);
  CHECK_THROWS_WITH_AS(V(torch::quantize_per_tensor(m, 0.1, 0, torch::kQInt8), "q"),
                       "dsd: torch tensor \"q\" is quantized; dsd views float and double tensors "
                       "only",
                       dsd::error);
  CHECK_THROWS_WITH_AS(V(torch::Tensor(), "u"), "dsd: torch tensor \"u\" is undefined", dsd::error);
  CHECK_THROWS_AS(dsd::Masked(V(torch::zeros({0})), "empty"), dsd::error);
}

TEST_CASE("wrap takes a module's weights by registered name, not biases or BatchNorm") {
  Net net;
  auto layers = dsd::torch::wrap(net);
  CHECK(names_of(layers) == std::vector<std::string>{"features.0.weight", "head.weight"});
  CHECK(layers.parameter(1).data_ptr<float>() == net->head->weight.data_ptr<float>());
  CHECK(layers[0].shape() == dsd::Shape{4, 9});

  auto only_head = dsd::torch::wrap(net, {.exclude = {"features.0.weight"}});
  CHECK(names_of(only_head) == std::vector<std::string>{"head.weight"});
  auto with_biases = dsd::torch::wrap(
      net, {.select = [](const std::string& name, const torch::Tensor&) {
        return name.ends_with("bias") && name != "features.1.bias";
      }});
  CHECK(names_of(with_biases) == std::vector<std::string>{"features.0.bias", "head.bias"});
  CHECK_THROWS_WITH_AS((void)dsd::torch::wrap(net, {.exclude = {"head.weights"}}),
                       "dsd: exclude: \"head.weights\" is not a parameter of the module; "
                       "parameters: features.0.weight, features.0.bias, features.1.weight, "
                       "features.1.bias, head.weight, head.bias",
                       dsd::error);
  CHECK_THROWS_WITH_AS((void)layers.at("head"),
                       "dsd: no wrapped layer \"head\"; wrapped: features.0.weight, head.weight",
                       dsd::error);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 4));
  auto rnn = dsd::torch::wrap(lstm);
  CHECK(names_of(rnn) == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
}

TEST_CASE_TEMPLATE_DEFINE("torch::optim state stays masked and restarts at zero on re-dense", Opt,
                          masked_state) {
  torch::manual_seed(3);
  Net net;
  auto layers = dsd::torch::wrap(net);
  Opt opt = [&] {
    if constexpr (std::is_same_v<Opt, torch::optim::SGD>)
      return Opt(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3));
    else
      return Opt(net->parameters(), torch::optim::AdamOptions(1e-2).weight_decay(1e-3));
  }();
  const auto buffers = [&](std::size_t i) {
    auto& s = *opt.state().at(c10::guts::to_string(layers.parameter(i).unsafeGetTensorImpl()));
    if constexpr (std::is_same_v<Opt, torch::optim::SGD>)
      return std::vector<torch::Tensor>{
          static_cast<torch::optim::SGDParamState&>(s).momentum_buffer()};
    else
      return std::vector<torch::Tensor>{static_cast<torch::optim::AdamParamState&>(s).exp_avg(),
                                        static_cast<torch::optim::AdamParamState&>(s).exp_avg_sq()};
  };
  for (int step = 0; step < 3; ++step) {  // dense steps: state everywhere
    backward(net, step);
    opt.step();
    layers.enforce(opt);
  }
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.6});
  layers.enforce(opt);  // the state of the weights just pruned
  CHECK(layers[0].mask().count() == 14);   // 36 weights, 22 pruned
  CHECK(layers[1].mask().count() == 288);  // 720 weights, 432 pruned
  for (int step = 3; step < 8; ++step) {
    backward(net, step);
    layers.mask_grads();
    CHECK(nonzero_where_pruned(layers.parameter(1).grad(), layers[1].mask()) == 0);
    opt.step();
    layers.enforce(opt);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      CAPTURE(i);
      CHECK(nonzero_where_pruned(layers.parameter(i), layers[i].mask()) == 0);
      for (const auto& b : buffers(i)) CHECK(nonzero_where_pruned(b, layers[i].mask()) == 0);
    }
  }
  const dsd::BitMask pruned_mask = layers[1].mask();
  const auto before = layers.parameter(1).clone();
  dsd::redense(layers);
  backward(net, 9);
  opt.step();
  layers.enforce(opt);
  // Formerly pruned weights were exactly zero and now moved; their state is nonzero again.
  const float* w0 = before.data_ptr<float>();
  const float* w1 = layers.parameter(1).data_ptr<float>();
  std::size_t restarted = 0, moved = 0;
  for (std::size_t i = 0; i < pruned_mask.size(); ++i)
    if (!pruned_mask.test(i)) restarted += w0[i] == 0.0f, moved += w1[i] != 0.0f;
  CHECK(restarted == 432);
  CHECK(moved > 400);
}
TEST_CASE_TEMPLATE_INVOKE(masked_state, torch::optim::SGD, torch::optim::Adam);

TEST_CASE("RMSprop state is masked; an optimizer whose state dsd does not know is refused by name") {
  Net net;
  auto layers = dsd::torch::wrap(net);
  torch::optim::LBFGS lbfgs(net->parameters(), torch::optim::LBFGSOptions(0.1));
  backward(net, 1);
  lbfgs.step([&] {
    net->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(torch::randn({8, 1, 8, 8})),
                                                     torch::randint(0, 5, {8}));
    loss.backward();
    return loss;
  });
  // LBFGS keeps one flat state for all parameters under the first one's key: not maskable.
  CHECK_THROWS_WITH_AS(layers.enforce(lbfgs),
                       "dsd: cannot mask the optimizer state of layer \"features.0.weight\": state "
                       "type torch::optim::LBFGSParamState is not SGD, Adam, AdamW, RMSprop or "
                       "Adagrad; call enforce() without the optimizer and mask its buffers yourself",
                       dsd::error);
  torch::optim::RMSprop rms(net->parameters(), torch::optim::RMSpropOptions(0.01).momentum(0.5));
  backward(net, 2);
  rms.step();
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  layers.enforce(rms);
  auto& s = static_cast<torch::optim::RMSpropParamState&>(
      *rms.state().at(c10::guts::to_string(layers.parameter(1).unsafeGetTensorImpl())));
  CHECK(nonzero_where_pruned(s.square_avg(), layers[1].mask()) == 0);
  CHECK(nonzero_where_pruned(s.momentum_buffer(), layers[1].mask()) == 0);
}

TEST_CASE("the schedule's lr of every phase reaches the torch optimizer's param groups") {
  Net net;
  auto layers = dsd::torch::wrap(net);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(1.0).momentum(0.9));
  std::vector<double> seen;
  dsd::Callbacks cb;
  cb.set_lr = dsd::torch::lr_setter(opt);
  cb.train_epoch = [&](const dsd::EpochContext&) {
    for (const auto& g : opt.param_groups()) CHECK(g.options().get_lr() == seen.emplace_back(g.options().get_lr()));
    backward(net, 0);
    opt.step();
    layers.enforce(opt);
    return 0.0;
  };
  cb.evaluate = [] { return 0.5; };
  const dsd::Schedule s{.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 2, .lr = 0.04};
  dsd::run(layers, s, dsd::UniformSparsity{.sparsity = 0.5}, cb);
  REQUIRE(seen.size() == 4);  // one param group
  CHECK(seen[0] == 0.04);
  CHECK(seen[1] == 0.04);
  CHECK(seen[2] == doctest::Approx(0.004));
  CHECK(seen[3] == doctest::Approx(0.004));
}

TEST_CASE("dsd's fused momentum step from p.grad() follows torch::optim::SGD") {
  torch::manual_seed(5);
  Net a, b;
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < a->parameters().size(); ++i)
      b->parameters()[i].copy_(a->parameters()[i]);
  }
  auto la = dsd::torch::wrap(a), lb = dsd::torch::wrap(b);
  dsd::prune(la, dsd::UniformSparsity{.sparsity = 0.5});
  dsd::prune(lb, dsd::UniformSparsity{.sparsity = 0.5});
  torch::optim::SGD torch_opt(a->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3));
  // b: dsd updates the wrapped weights, torch the rest (biases, BatchNorm) at the same settings.
  std::vector<torch::Tensor> rest;
  for (const auto& p : b->named_parameters())
    if (!p.key().ends_with("weight") || p.value().dim() < 2) rest.push_back(p.value());
  torch::optim::SGD rest_opt(rest, torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3));
  const dsd::MomentumSgd dsd_opt{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3};
  for (int step = 0; step < 5; ++step) {
    backward(a, step);
    la.mask_grads();
    torch_opt.step();
    la.enforce(torch_opt);
    backward(b, step);
    lb.step(dsd_opt);
    rest_opt.step();
  }
  for (std::size_t i = 0; i < la.size(); ++i) {
    CAPTURE(i);
    CHECK(torch::allclose(la.parameter(i), lb.parameter(i), 1e-5, 1e-6));
    CHECK(nonzero_where_pruned(lb.parameter(i), lb[i].mask()) == 0);
  }
}

TEST_CASE("a libtorch model's masks and weights round-trip through a dsd checkpoint") {
  torch::manual_seed(7);
  Net net, other;
  auto layers = dsd::torch::wrap(net), restored = dsd::torch::wrap(other);
  dsd::prune(layers, dsd::GlobalSparsity{.sparsity = 0.7});
  const auto path = std::filesystem::temp_directory_path() / "dsd_torch_checkpoint.safetensors";
  dsd::io::save_checkpoint(path, layers, {{"model", "Net"}});
  const auto meta = dsd::io::load_checkpoint(path, restored);
  std::filesystem::remove(path);
  CHECK(meta.at("model") == "Net");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CHECK(restored[i].mask() == layers[i].mask());
    CHECK(torch::equal(restored.parameter(i), layers.parameter(i)));
  }
}

#if defined(DSD_TORCH_DEVICE_VIEW)
TEST_CASE("device_view refuses a CPU tensor and a wrong dtype before any device call") {
  CHECK_THROWS_WITH_AS((void)dsd::torch::device_view<float>(torch::zeros({4, 3}), "fc.weight", nullptr),
                       "dsd: torch tensor \"fc.weight\" is not a CUDA tensor; use tensor_view for "
                       "CPU tensors",
                       dsd::error);
}
#endif

namespace {
/// A decoder whose weight is a tensor it is given.
struct Decoder : torch::nn::Module {
  torch::Tensor weight;
  explicit Decoder(torch::Tensor w) { weight = register_parameter("weight", std::move(w)); }
};
/// A tied embedding: the decoder's weight is the embedding's tensor (weight tying).
struct TiedImpl : torch::nn::Module {
  torch::nn::Embedding embedding{10, 6};
  std::shared_ptr<Decoder> decoder;
  TiedImpl() {
    register_module("embedding", embedding);
    decoder = register_module("decoder", std::make_shared<Decoder>(embedding->weight));
  }
};
TORCH_MODULE(Tied);
}  // namespace

TEST_CASE("a tied weight is wrapped once, under its first name, the others kept as aliases") {
  torch::manual_seed(3);
  Tied net;
  auto layers = dsd::torch::wrap(net);
  REQUIRE(layers.size() == 1);  // before: twice, with two masks that zeroed each other's kept weights
  CHECK(layers[0].name() == "embedding.weight");
  CHECK(layers.aliases(0) == std::vector<std::string>{"decoder.weight"});
  CHECK(&layers.at("decoder.weight") == &layers[0]);
  dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5});
  const auto w = net->embedding->weight.contiguous();
  std::size_t kept_nonzero = 0;
  for (std::size_t i = 0; i < layers[0].size(); ++i)
    kept_nonzero += layers[0].mask().test(i) && w.data_ptr<float>()[i] != 0.0f;
  CHECK(kept_nonzero == 30);  // every kept weight survives
  // excluding it under either name excludes the tensor
  CHECK_THROWS_WITH_AS((void)dsd::torch::wrap(net, {.exclude = {"decoder.weight"}}),
                       "dsd: wrap: no parameter of the module was selected", dsd::error);
  // two tensors overlapping in one storage are refused, naming both
  const auto storage = torch::zeros({20, 5});
  CHECK_THROWS_WITH_AS(dsd::torch::Layers<float>({{"a", storage.narrow(0, 0, 12)},
                                                  {"b", storage.narrow(0, 8, 12)}}),
                       doctest::Contains("parameters \"a\" and \"b\" overlap in one storage"),
                       dsd::error);
}

TEST_CASE("a model moved after wrapping is a dsd::error naming the layer, never a c10::Error") {
  Net net;
  auto layers = dsd::torch::wrap(net);
  net->to(torch::kDouble);
  CHECK_THROWS_WITH_AS((void)layers[0].weights(),
                       "dsd: torch tensor \"features.0.weight\" has dtype Double, expected Float",
                       dsd::error);
  CHECK_THROWS_AS(dsd::prune(layers, dsd::UniformSparsity{.sparsity = 0.5}), dsd::error);
  CHECK_THROWS_AS(layers.enforce(), dsd::error);
}

TEST_CASE("Layers::step checks every gradient before any layer steps") {
  Net net;
  auto layers = dsd::torch::wrap(net);
  REQUIRE(layers.size() == 2);
  backward(net, 5);
  const auto before0 = layers.parameter(0).clone();
  const auto before1 = layers.parameter(1).clone();
  layers.parameter(1).mutable_grad() = torch::zeros({3});  // a gradient of the wrong size
  const dsd::MomentumSgd opt{.lr = 0.1, .momentum = 0.9};
  CHECK_THROWS_WITH_AS(layers.step(opt),
                       "dsd: gradient of layer \"head.weight\" has 3 elements, expected 720",
                       dsd::error);
  CHECK(torch::equal(layers.parameter(0), before0));  // before: layer 0 had stepped
  CHECK(layers[0].state().step == 0);
  layers.parameter(1).mutable_grad() = torch::zeros({5, 144}, torch::kDouble);
  CHECK_THROWS_AS(layers.step(opt), dsd::error);
  CHECK(torch::equal(layers.parameter(0), before0));
  CHECK(torch::equal(layers.parameter(1), before1));
}
