// DSD in a plain CUDA trainer: LeNet-300-100 (784-300-100-10) on Fashion-MNIST, end to end on
// the GPU.
//
// The trainer is the ordinary kind: its weights and gradients are device buffers it owns, cuBLAS
// computes the products, a few grid-stride kernels add biases, apply ReLU and the softmax
// cross-entropy. DSD adds the lines marked "dsd:"; look for
//   dsd::cuda::device_tensor, dsd::cuda::DeviceMasked
//                          a view of each device weight buffer plus its device mask (no copy)
//   dsd::cuda::step        one launch: momentum SGD on every layer with the mask fused in
//   dsd::Callbacks         set_lr = dsd::lr_of(opt), train_epoch, evaluate
//   dsd::Schedule, dsd::run, dsd::print_report
//                          dense -> prune 50 % on the device -> sparse -> re-dense at lr/10
//
// Build: part of dsd's CMake build wherever nvcc is found (target cuda_mlp; links dsd::cuda),
//        or by hand on a machine with a GPU:
//        nvcc -std=c++20 -O2 -arch=native -I DSD/include cuda_mlp.cu -lcublas -lcusparse -lz
// Run:   cuda_mlp [DATA_DIR [TRAIN_IMAGES [EPOCHS_PER_PHASE]]]
//        DATA_DIR holds the four .gz files of Debian's dataset-fashion-mnist (the default below);
//        TRAIN_IMAGES (0: all) and EPOCHS_PER_PHASE make a quick run. Without a GPU it stops
//        with dsd's "no usable CUDA device" error. The last line is "final test accuracy: 0.xxxx".
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <iostream>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

// ---- Settings -----------------------------------------------------------------------------
constexpr const char* kDataDir = "/usr/share/datasets/fashion-mnist";
constexpr int kEpochsPerPhase = 4;  // dense, sparse and re-dense epochs each
constexpr double kSparsity = 0.5;   // fraction of every weight matrix pruned
constexpr double kLr = 0.01;        // dense and sparse phases; re-dense runs at kLr / 10
constexpr double kMomentum = 0.9;
constexpr double kWeightDecay = 1e-4;
constexpr std::size_t kBatch = 64;
constexpr std::size_t kEvalBatch = 1000;
constexpr std::size_t kValidation = 5000;  // training images held out for evaluate()
constexpr std::uint64_t kSeed = 1;
constexpr std::array<std::size_t, 4> kWidths = {784, 300, 100, 10};

// ---- Fashion-MNIST: gzipped IDX files -----------------------------------------------------
constexpr std::size_t kPixels = 28 * 28;

struct Split {
  std::vector<float> images;  // count rows of kPixels, normalised
  std::vector<std::uint8_t> labels;
  std::size_t count() const { return labels.size(); }
};

std::vector<std::uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr)
    throw std::runtime_error("cuda_mlp: cannot open " + path +
                             " (install Debian's dataset-fashion-mnist, or pass the directory "
                             "holding the Fashion-MNIST .gz files as the first argument)");
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, 1 << 16> chunk;
  int n = 0;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  gzclose(f);
  if (n < 0) throw std::runtime_error("cuda_mlp: " + path + " is not a valid gzip file");
  return bytes;
}

std::uint32_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
         std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

// One split ("train" or "t10k"): IDX magic 0x803 (images) and 0x801 (labels), big-endian sizes.
Split load(const std::string& dir, const std::string& split) {
  const std::string images_path = dir + "/" + split + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + split + "-labels-idx1-ubyte.gz";
  const auto images = read_gz(images_path), labels = read_gz(labels_path);
  if (images.size() < 16 || big_endian(images, 0) != 0x803 ||
      images.size() != 16 + std::size_t{big_endian(images, 4)} * kPixels)
    throw std::runtime_error("cuda_mlp: " + images_path + " is not a Fashion-MNIST image file");
  if (labels.size() < 8 || big_endian(labels, 0) != 0x801 ||
      labels.size() - 8 != big_endian(images, 4))
    throw std::runtime_error("cuda_mlp: " + labels_path + " does not match " + images_path);
  Split s;
  s.labels.assign(labels.begin() + 8, labels.end());
  s.images.resize(images.size() - 16);
  for (std::size_t i = 0; i < s.images.size(); ++i)  // Fashion-MNIST's pixel mean and deviation
    s.images[i] = (static_cast<float>(images[16 + i]) / 255.0f - 0.2860f) / 0.3530f;
  return s;
}

// ---- Kernels: grid-stride loops over a batch ----------------------------------------------
using dsd::cuda::global_thread, dsd::cuda::global_threads;

// y[i, j] += b[j], then ReLU unless this is the last layer.
__global__ void add_bias_relu(float* y, const float* b, std::size_t n, std::size_t out, bool relu) {
  for (std::size_t i = global_thread(); i < n * out; i += global_threads()) {
    const float v = y[i] + b[i % out];
    y[i] = relu && v < 0.0f ? 0.0f : v;
  }
}

// dx *= (x > 0), where x is the ReLU's output.
__global__ void relu_backward(float* dx, const float* x, std::size_t count) {
  for (std::size_t i = global_thread(); i < count; i += global_threads())
    if (x[i] <= 0.0f) dx[i] = 0.0f;
}

// db[j] = sum over the batch of dy[., j].
__global__ void bias_grad(const float* dy, float* db, std::size_t n, std::size_t out) {
  for (std::size_t j = global_thread(); j < out; j += global_threads()) {
    float s = 0.0f;
    for (std::size_t i = 0; i < n; ++i) s += dy[i * out + j];
    db[j] = s;
  }
}

// Softmax cross-entropy of 10 logits per image: dz = d(mean loss)/dz, *loss += each image's loss.
__global__ void softmax_xent(const float* z, const std::uint8_t* labels, std::size_t n, float* dz,
                             float* loss) {
  for (std::size_t i = global_thread(); i < n; i += global_threads()) {
    const float* zi = z + i * 10;
    float zmax = zi[0];
    for (int c = 1; c < 10; ++c) zmax = fmaxf(zmax, zi[c]);
    float sum = 0.0f;
    for (int c = 0; c < 10; ++c) sum += expf(zi[c] - zmax);
    for (int c = 0; c < 10; ++c)
      dz[i * 10 + c] = (expf(zi[c] - zmax) / sum - (c == labels[i] ? 1.0f : 0.0f)) / float(n);
    atomicAdd(loss, logf(sum) - (zi[labels[i]] - zmax));
  }
}

__global__ void count_correct(const float* z, const std::uint8_t* labels, std::size_t n,
                              unsigned long long* correct) {
  for (std::size_t i = global_thread(); i < n; i += global_threads()) {
    int best = 0;
    for (int c = 1; c < 10; ++c)
      if (z[i * 10 + c] > z[i * 10 + best]) best = c;
    if (best == labels[i]) atomicAdd(correct, 1ull);
  }
}

// ---- The model: fully connected layers on cuBLAS ------------------------------------------
template <class T>
using Buffer = dsd::cuda::DeviceBuffer<T>;

// y = W x + b for a batch; W is out x in, row-major. The trainer owns every device buffer.
struct Layer {
  std::size_t in, out;
  Buffer<float> w, b, dw, db;
};

class Mlp {
 public:
  Mlp() {
    std::mt19937_64 gen(kSeed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) {
      const std::size_t in = kWidths[l], out = kWidths[l + 1];
      std::vector<float> w(out * in);  // Glorot uniform
      const auto limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(in + out)));
      for (float& v : w) v = limit * uniform(gen);
      layers_.push_back({in, out, Buffer<float>(w), Buffer<float>(std::vector<float>(out, 0.0f)),
                         Buffer<float>(out * in), Buffer<float>(out)});
    }
    for (const std::size_t width : kWidths) {
      act_.emplace_back(kEvalBatch * width);
      grad_.emplace_back(kBatch * width);
    }
  }

  std::vector<Layer>& layers() { return layers_; }

  // Forward and backward on one training batch: fills every dw and db, returns the mean loss.
  float train_batch(const float* x, const std::uint8_t* labels) {
    forward(x, labels, kBatch);
    loss_.zero();
    softmax_xent<<<dsd::cuda::grid_for(kBatch), dsd::cuda::block_size>>>(
        act_.back().data(), labels_.data(), kBatch, grad_.back().data(), loss_.data());
    const int n = static_cast<int>(kBatch);
    for (std::size_t l = layers_.size(); l-- > 0;) {
      Layer& L = layers_[l];
      const int in = static_cast<int>(L.in), out = static_cast<int>(L.out);
      const float* dy = grad_[l + 1].data();
      // dW (out x in) = dy^T x
      DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one_,
                                   act_[l].data(), in, dy, out, &zero_, L.dw.data(), in));
      bias_grad<<<dsd::cuda::grid_for(L.out), dsd::cuda::block_size>>>(dy, L.db.data(), kBatch,
                                                                       L.out);
      if (l == 0) break;
      // dx (n x in) = dy W, then through the previous layer's ReLU
      DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one_,
                                   L.w.data(), in, dy, out, &zero_, grad_[l].data(), in));
      relu_backward<<<dsd::cuda::grid_for(kBatch * L.in), dsd::cuda::block_size>>>(
          grad_[l].data(), act_[l].data(), kBatch * L.in);
    }
    return loss_.download()[0] / static_cast<float>(kBatch);
  }

  // Fraction of `split` classified correctly.
  double accuracy(const Split& split) {
    correct_.zero();
    for (std::size_t start = 0; start < split.count(); start += kEvalBatch) {
      const std::size_t n = std::min(kEvalBatch, split.count() - start);
      forward(split.images.data() + start * kPixels, split.labels.data() + start, n);
      count_correct<<<dsd::cuda::grid_for(n), dsd::cuda::block_size>>>(
          act_.back().data(), labels_.data(), n, correct_.data());
    }
    return static_cast<double>(correct_.download()[0]) / static_cast<double>(split.count());
  }

 private:
  // Copies n images and labels to the device; act_[l + 1] = layer l's output.
  void forward(const float* x, const std::uint8_t* labels, std::size_t n) {
    act_[0].copy_from_host(std::span<const float>(x, n * kPixels));
    labels_.copy_from_host(std::span<const std::uint8_t>(labels, n));
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      // y (n x out) = x W^T
      DSD_CUBLAS_CHECK(cublasSgemm(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, int(L.out), int(n),
                                   int(L.in), &one_, L.w.data(), int(L.in), act_[l].data(),
                                   int(L.in), &zero_, act_[l + 1].data(), int(L.out)));
      add_bias_relu<<<dsd::cuda::grid_for(n * L.out), dsd::cuda::block_size>>>(
          act_[l + 1].data(), L.b.data(), n, L.out, l + 1 < layers_.size());
    }
  }

  dsd::cuda::CublasHandle cublas_;  // on the default stream, as every kernel here
  std::vector<Layer> layers_;
  std::vector<Buffer<float>> act_, grad_;  // per layer boundary: outputs and their gradients
  Buffer<std::uint8_t> labels_ = Buffer<std::uint8_t>(kEvalBatch);
  Buffer<float> loss_ = Buffer<float>(1);
  Buffer<unsigned long long> correct_ = Buffer<unsigned long long>(1);
  float one_ = 1.0f, zero_ = 0.0f;
};

// ---- Training -----------------------------------------------------------------------------
int main(int argc, char** argv) try {
  const std::string dir = argc > 1 && *argv[1] ? argv[1] : kDataDir;
  const std::size_t train_images = argc > 2 ? std::stoul(argv[2]) : 0;
  const int epochs = argc > 3 ? std::stoi(argv[3]) : kEpochsPerPhase;
  dsd::cuda::require_device();  // dsd: a clear error on a machine without a GPU

  Split train = load(dir, "train");
  const Split test = load(dir, "t10k");
  Split validation;  // the last kValidation training images
  const std::size_t keep = train.count() - kValidation;
  validation.images.assign(train.images.begin() + static_cast<std::ptrdiff_t>(keep * kPixels),
                           train.images.end());
  validation.labels.assign(train.labels.begin() + static_cast<std::ptrdiff_t>(keep),
                           train.labels.end());
  const std::size_t n = train_images > 0 ? std::min(train_images, keep) : keep;
  train.images.resize(n * kPixels);
  train.labels.resize(n);
  std::cout << "train " << n << ", validation " << validation.count() << ", test " << test.count()
            << " images from " << dir << "\n";

  Mlp model;
  // dsd: every device weight matrix wrapped as a view (these are pruned), every bias too (never
  // handed to dsd::run, so never pruned; the same optimizer steps them). Masks live on the GPU.
  std::vector<dsd::cuda::DeviceMasked<float>> weights, biases;
  std::vector<dsd::cuda::device_tensor<const float>> weight_grads, bias_grads;
  for (std::size_t l = 0; l < model.layers().size(); ++l) {
    Layer& L = model.layers()[l];
    const std::string name = "fc" + std::to_string(l + 1);
    weights.emplace_back(dsd::cuda::device_tensor<float>{L.w.data(), L.w.size(), {L.out, L.in}},
                         name);
    biases.emplace_back(dsd::cuda::device_tensor<float>{L.b.data(), L.b.size()}, name + ".bias");
    weight_grads.push_back({L.dw.data(), L.dw.size()});
    bias_grads.push_back({L.db.data(), L.db.size()});
  }
  dsd::MomentumSgd opt{.lr = kLr, .momentum = kMomentum, .weight_decay = kWeightDecay};  // dsd

  std::mt19937_64 shuffle(kSeed);
  std::vector<std::size_t> order(n);
  std::vector<float> x(kBatch * kPixels);
  std::vector<std::uint8_t> y(kBatch);

  dsd::Callbacks cb;            // dsd: the trainer's side of the D -> S -> D loop
  cb.set_lr = dsd::lr_of(opt);  // dsd: the schedule sets opt.lr every epoch (/10 when re-densing)
  cb.train_epoch = [&](const dsd::EpochContext&) {  // dsd: one epoch of the ordinary loop
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), shuffle);
    const std::size_t batches = n / kBatch;
    double loss = 0;
    for (std::size_t b = 0; b < batches; ++b) {
      for (std::size_t j = 0; j < kBatch; ++j) {
        const std::size_t i = order[b * kBatch + j];
        std::copy_n(train.images.begin() + static_cast<std::ptrdiff_t>(i * kPixels), kPixels,
                    x.begin() + static_cast<std::ptrdiff_t>(j * kPixels));
        y[j] = train.labels[i];
      }
      loss += model.train_batch(x.data(), y.data());
      dsd::cuda::step(opt, weights, weight_grads);  // dsd: masked updates, one launch each
      dsd::cuda::step(opt, biases, bias_grads);
    }
    return loss / static_cast<double>(batches);
  };
  cb.evaluate = [&] { return model.accuracy(validation); };  // dsd: scored after every epoch
  cb.progress = &std::cout;

  // dsd: dense, prune kSparsity of each weight matrix (Keepmax-Cut on the GPU), sparse, re-dense.
  const dsd::Schedule schedule{
      .dense_epochs = epochs, .sparse_epochs = epochs, .redense_epochs = epochs, .lr = kLr};
  const dsd::Report report =
      dsd::run(weights, schedule, dsd::UniformSparsity{.sparsity = kSparsity}, cb);
  dsd::print_report(std::cout, report);
  std::printf("final test accuracy: %.4f\n", model.accuracy(test));
  return 0;
} catch (const std::exception& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
