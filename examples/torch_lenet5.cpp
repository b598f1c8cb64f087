// DSD in an ordinary libtorch trainer: LeNet-5 on Fashion-MNIST.
//
// The trainer is the one the PyTorch C++ examples write: a torch::nn::Module, a torch data
// loader, torch::optim::SGD with momentum, zero_grad / backward / step. The lines marked "+ dsd"
// are all DSD adds; look for
//   dsd::torch::wrap           the module's weights, by their registered names (biases stay dense)
//   dsd::torch::lr_setter      the schedule's learning rate written into the optimizer
//   layers.enforce(optimizer)  after optimizer.step(): pruned weights and momentum stay zero
//   dsd::Callbacks, dsd::Schedule, dsd::run, dsd::print_report
//
// Build: part of dsd's CMake build when libtorch is found (target torch_lenet5; Debian's
//        libtorch-dev, zlib1g-dev).
// Run:   torch_lenet5 [DATA_DIR [TRAIN_IMAGES [EPOCHS_PER_PHASE]]]
//        DATA_DIR holds the four .gz files of Debian's dataset-fashion-mnist (the default below);
//        TRAIN_IMAGES (0: all) and EPOCHS_PER_PHASE make a quick run, e.g. `torch_lenet5 "" 6000
//        1`.
// The last line is "final test accuracy: 0.xxxx".
#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <dsd/adapters/torch.hpp>
#include <dsd/dsd.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

// ---- Settings -----------------------------------------------------------------------------
constexpr const char* kDataDir = "/usr/share/datasets/fashion-mnist";
constexpr int kEpochsPerPhase = 4;  // dense, sparse and re-dense epochs each
constexpr double kSparsity = 0.5;   // fraction of every weight tensor pruned
constexpr double kLr = 0.03;        // dense and sparse phases; re-dense runs at kLr / 10
constexpr double kMomentum = 0.9;
constexpr double kWeightDecay = 1e-4;
constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kValidation = 5000;  // training images held out for evaluate()
constexpr std::uint64_t kSeed = 1;

// ---- The model ----------------------------------------------------------------------------
// LeNet-5: conv 6@5x5 (pad 2) -> pool -> conv 16@5x5 -> pool -> FC 120 -> 84 -> 10.
struct LeNet5Impl : torch::nn::Module {
  torch::nn::Sequential features{torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)),
                                 torch::nn::ReLU(),
                                 torch::nn::MaxPool2d(2),
                                 torch::nn::Conv2d(6, 16, 5),
                                 torch::nn::ReLU(),
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

// ---- Fashion-MNIST: gzipped IDX files into tensors ----------------------------------------
std::vector<std::uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr)
    throw std::runtime_error("torch_lenet5: cannot open " + path +
                             " (install Debian's dataset-fashion-mnist, or pass the directory "
                             "holding the Fashion-MNIST .gz files as the first argument)");
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, 1 << 16> chunk;
  int n = 0;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  gzclose(f);
  if (n < 0) throw std::runtime_error("torch_lenet5: " + path + " is not a valid gzip file");
  return bytes;
}

std::int64_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::int64_t{b[at]} << 24 | std::int64_t{b[at + 1]} << 16 | std::int64_t{b[at + 2]} << 8 |
         b[at + 3];
}

struct Split {
  torch::Tensor images;  // [N, 1, 28, 28] float, normalised
  torch::Tensor labels;  // [N] int64
};

// One split ("train" or "t10k"): IDX magic 0x803 (images) and 0x801 (labels), big-endian sizes.
Split load(const std::string& dir, const std::string& split) {
  const std::string images_path = dir + "/" + split + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + split + "-labels-idx1-ubyte.gz";
  auto images = read_gz(images_path), labels = read_gz(labels_path);
  if (images.size() < 16 || big_endian(images, 0) != 0x803 ||
      images.size() != static_cast<std::size_t>(16 + big_endian(images, 4) * 28 * 28))
    throw std::runtime_error("torch_lenet5: " + images_path + " is not a Fashion-MNIST image file");
  const std::int64_t n = big_endian(images, 4);
  if (labels.size() < 8 || big_endian(labels, 0) != 0x801 ||
      labels.size() != static_cast<std::size_t>(8 + n))
    throw std::runtime_error("torch_lenet5: " + labels_path + " does not match " + images_path);
  const auto x = torch::from_blob(images.data() + 16, {n, 1, 28, 28}, torch::kUInt8);
  const auto y = torch::from_blob(labels.data() + 8, {n}, torch::kUInt8);
  // Fashion-MNIST's pixel mean and deviation; the copies own their data.
  return {(x.to(torch::kFloat) / 255.0 - 0.2860) / 0.3530, y.to(torch::kLong)};
}

// A split as a torch dataset: one (image, label) example per index.
class Images : public torch::data::datasets::Dataset<Images> {
 public:
  explicit Images(Split s) : s_(std::move(s)) {}
  torch::data::Example<> get(std::size_t i) override {
    const auto at = static_cast<std::int64_t>(i);
    return {s_.images[at], s_.labels[at]};
  }
  torch::optional<std::size_t> size() const override {
    return static_cast<std::size_t>(s_.labels.size(0));
  }

 private:
  Split s_;
};

// Fraction of `split` classified correctly.
double accuracy(LeNet5& model, const Split& split) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto images = split.images.split(1000), labels = split.labels.split(1000);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < images.size(); ++i)
    correct += model->forward(images[i]).argmax(1).eq(labels[i]).sum().item<std::int64_t>();
  return static_cast<double>(correct) / static_cast<double>(split.labels.size(0));
}

// ---- Training -----------------------------------------------------------------------------
int main(int argc, char** argv) try {
  const std::string dir = argc > 1 && *argv[1] ? argv[1] : kDataDir;
  const std::int64_t train_images = argc > 2 ? std::stoll(argv[2]) : 0;
  const int epochs = argc > 3 ? std::stoi(argv[3]) : kEpochsPerPhase;
  torch::manual_seed(kSeed);  // initialisation and batch order

  Split train = load(dir, "train");
  const Split test = load(dir, "t10k");
  const std::int64_t keep = train.labels.size(0) - kValidation;
  const Split validation{train.images.slice(0, keep), train.labels.slice(0, keep)};
  const std::int64_t n = train_images > 0 ? std::min(train_images, keep) : keep;
  train = {train.images.slice(0, 0, n), train.labels.slice(0, 0, n)};
  std::cout << "train " << n << ", validation " << kValidation << ", test " << test.labels.size(0)
            << " images from " << dir << "\n";

  LeNet5 model;
  torch::optim::SGD optimizer(
      model->parameters(),
      torch::optim::SGDOptions(kLr).momentum(kMomentum).weight_decay(kWeightDecay));
  auto loader = torch::data::make_data_loader<torch::data::samplers::RandomSampler>(
      Images(train).map(torch::data::transforms::Stack<>()),
      torch::data::DataLoaderOptions(kBatch).drop_last(true));

  // example-begin torch
  auto layers = dsd::torch::wrap(model);         // + dsd: weights by name, as views
  dsd::Callbacks cb;                             // + dsd
  cb.set_lr = dsd::torch::lr_setter(optimizer);  // + dsd: the schedule's lr of every phase
  cb.train_epoch = [&](const dsd::EpochContext&) {
    model->train();
    double loss_sum = 0;
    std::size_t batches = 0;
    for (auto& batch : *loader) {
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(batch.data), batch.target);
      loss.backward();
      optimizer.step();
      layers.enforce(optimizer);  // + dsd: pruned weights and their optimizer state stay zero
      loss_sum += loss.item<double>(), ++batches;
    }
    return loss_sum / static_cast<double>(batches);
  };
  cb.evaluate = [&] { return accuracy(model, validation); };
  cb.progress = &std::cout;

  // + dsd: dense, prune 50 % of every weight tensor, sparse, re-dense at lr/10.
  const dsd::Schedule schedule{
      .dense_epochs = epochs, .sparse_epochs = epochs, .redense_epochs = epochs, .lr = kLr};
  const dsd::Report report =
      dsd::run(layers, schedule, dsd::UniformSparsity{.sparsity = kSparsity}, cb);
  // example-end torch
  dsd::print_report(std::cout, report);
  std::printf("final test accuracy: %.4f\n", accuracy(model, test));
  return 0;
} catch (const std::exception& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
