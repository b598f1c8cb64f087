// DSD in a plain oneDNN trainer: LeNet-300-100 (784-300-100-10) on Fashion-MNIST.
//
// The trainer is the ordinary kind: its weights are std::vector<float> buffers it owns, oneDNN
// 2.6 inner-product primitives compute the forward and backward passes, ReLU and softmax
// cross-entropy are written by hand. DSD adds the lines marked "dsd:"; look for
//   dsd::Masked            a view of each weight buffer plus its mask (no copy)
//   dsd::MomentumSgd       the optimizer, stepping every parameter with the mask fused in
//   dsd::Callbacks         set_lr = dsd::lr_of(opt), train_epoch, evaluate
//   dsd::Schedule, dsd::run, dsd::print_report
//                          dense -> prune 50 % -> sparse -> re-dense at lr/10, and its report
//
// Build: part of dsd's CMake build (target onednn_mlp; oneDNN: libdnnl-dev, zlib: zlib1g-dev),
//        or by hand: g++ -std=c++20 -O2 -fopenmp -I DSD/include onednn_mlp.cpp -ldnnl -lz
// Run:   onednn_mlp [DATA_DIR [TRAIN_IMAGES [EPOCHS_PER_PHASE]]]
//        DATA_DIR holds the four .gz files of Debian's dataset-fashion-mnist (the default below);
//        TRAIN_IMAGES (0: all) and EPOCHS_PER_PHASE make a quick run, e.g. `onednn_mlp "" 6000 1`.
// The last line is "final test accuracy: 0.xxxx".
#include <zlib.h>
#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <dsd/dsd.hpp>

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
constexpr std::array<int, 4> kWidths = {784, 300, 100, 10};

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
    throw std::runtime_error("onednn_mlp: cannot open " + path +
                             " (install Debian's dataset-fashion-mnist, or pass the directory "
                             "holding the Fashion-MNIST .gz files as the first argument)");
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, 1 << 16> chunk;
  int n = 0;
  while ((n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  gzclose(f);
  if (n < 0) throw std::runtime_error("onednn_mlp: " + path + " is not a valid gzip file");
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
    throw std::runtime_error("onednn_mlp: " + images_path + " is not a Fashion-MNIST image file");
  if (labels.size() < 8 || big_endian(labels, 0) != 0x801 ||
      labels.size() - 8 != big_endian(images, 4))
    throw std::runtime_error("onednn_mlp: " + labels_path + " does not match " + images_path);
  Split s;
  s.labels.assign(labels.begin() + 8, labels.end());
  s.images.resize(images.size() - 16);
  for (std::size_t i = 0; i < s.images.size(); ++i)  // Fashion-MNIST's pixel mean and deviation
    s.images[i] = (static_cast<float>(images[16 + i]) / 255.0f - 0.2860f) / 0.3530f;
  return s;
}

// The last `n` images of `from`, moved into a split of their own.
Split hold_out(Split& from, std::size_t n) {
  const std::size_t keep = from.count() - n;
  Split tail;
  tail.images.assign(from.images.begin() + static_cast<std::ptrdiff_t>(keep * kPixels),
                     from.images.end());
  tail.labels.assign(from.labels.begin() + static_cast<std::ptrdiff_t>(keep), from.labels.end());
  from.images.resize(keep * kPixels);
  from.labels.resize(keep);
  return tail;
}

// ---- The model: fully connected layers on oneDNN ------------------------------------------
using dim = dnnl::memory::dim;
using tag = dnnl::memory::format_tag;
constexpr auto f32 = dnnl::memory::data_type::f32;

// y = W x + b for a batch; W is out x in, row-major (oneDNN's "oi"). The trainer owns every
// buffer; oneDNN reads and writes them in place.
struct Layer {
  std::string name;
  dim in, out;
  std::vector<float> w, b, dw, db;
  dnnl::memory::desc w_md, b_md;
  dnnl::inner_product_forward forward, forward_eval;      // training batch, evaluation batch
  dnnl::inner_product_backward_data backward_data;        // dL/dx
  dnnl::inner_product_backward_weights backward_weights;  // dL/dW, dL/db
};

class Mlp {
 public:
  Mlp() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    std::mt19937_64 gen(kSeed);
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) layers_.push_back(make_layer(l, gen));
    for (const int width : kWidths) {
      act_.emplace_back(kEvalBatch * static_cast<std::size_t>(width));
      grad_.emplace_back(kBatch * static_cast<std::size_t>(width));
    }
  }

  std::vector<Layer>& layers() { return layers_; }

  // Forward and backward on one training batch: fills every dw and db, returns the mean loss.
  float train_batch(const float* x, const std::uint8_t* labels) {
    forward(x, kBatch);
    const float loss = softmax_cross_entropy(labels);
    for (std::size_t l = layers_.size(); l-- > 0;) {
      Layer& L = layers_[l];
      const dnnl::memory::desc x_md = batch_md(kBatch, L.in), y_md = batch_md(kBatch, L.out);
      const dnnl::memory dy = memory(y_md, grad_[l + 1].data());
      L.backward_weights.execute(stream_, {{DNNL_ARG_SRC, memory(x_md, input(l, x))},
                                           {DNNL_ARG_DIFF_DST, dy},
                                           {DNNL_ARG_DIFF_WEIGHTS, memory(L.w_md, L.dw.data())},
                                           {DNNL_ARG_DIFF_BIAS, memory(L.b_md, L.db.data())}});
      if (l == 0) break;
      L.backward_data.execute(stream_, {{DNNL_ARG_DIFF_DST, dy},
                                        {DNNL_ARG_WEIGHTS, memory(L.w_md, L.w.data())},
                                        {DNNL_ARG_DIFF_SRC, memory(x_md, grad_[l].data())}});
      stream_.wait();
      for (std::size_t i = 0; i < kBatch * static_cast<std::size_t>(L.in); ++i)  // ReLU backward
        if (act_[l][i] <= 0.0f) grad_[l][i] = 0.0f;
    }
    stream_.wait();
    return loss;
  }

  // Fraction of `split` classified correctly.
  double accuracy(const Split& split) {
    std::size_t correct = 0;
    for (std::size_t start = 0; start < split.count(); start += kEvalBatch) {
      const std::size_t n = std::min(kEvalBatch, split.count() - start);
      std::vector<float> batch(kEvalBatch * kPixels, 0.0f);  // a last partial batch is padded
      std::copy_n(split.images.begin() + static_cast<std::ptrdiff_t>(start * kPixels), n * kPixels,
                  batch.begin());
      forward(batch.data(), kEvalBatch);
      for (std::size_t i = 0; i < n; ++i) {
        const float* z = act_.back().data() + i * 10;
        correct +=
            static_cast<std::size_t>(std::max_element(z, z + 10) - z) == split.labels[start + i];
      }
    }
    return static_cast<double>(correct) / static_cast<double>(split.count());
  }

 private:
  static dnnl::memory::desc batch_md(std::size_t n, dim width) {
    return {{static_cast<dim>(n), width}, f32, tag::nc};
  }
  dnnl::memory memory(const dnnl::memory::desc& md, const float* data) const {
    return {md, engine_, const_cast<float*>(data)};
  }
  const float* input(std::size_t l, const float* x) const { return l == 0 ? x : act_[l].data(); }

  Layer make_layer(std::size_t l, std::mt19937_64& gen) {
    Layer L;
    L.name = "fc" + std::to_string(l + 1);
    L.in = kWidths[l];
    L.out = kWidths[l + 1];
    const auto in = static_cast<std::size_t>(L.in), out = static_cast<std::size_t>(L.out);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);  // Glorot: scaled below
    const auto limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(in + out)));
    L.w.resize(out * in);
    for (float& v : L.w) v = limit * uniform(gen);
    L.b.assign(out, 0.0f);
    L.dw.resize(L.w.size());
    L.db.resize(L.b.size());
    L.w_md = {{L.out, L.in}, f32, tag::oi};
    L.b_md = {{L.out}, f32, tag::x};
    const auto x_md = batch_md(kBatch, L.in), y_md = batch_md(kBatch, L.out);
    const dnnl::inner_product_forward::primitive_desc fwd(
        {dnnl::prop_kind::forward_training, x_md, L.w_md, L.b_md, y_md}, engine_);
    L.forward = dnnl::inner_product_forward(fwd);
    const dnnl::inner_product_forward::primitive_desc eval(
        {dnnl::prop_kind::forward_inference, batch_md(kEvalBatch, L.in), L.w_md, L.b_md,
         batch_md(kEvalBatch, L.out)},
        engine_);
    L.forward_eval = dnnl::inner_product_forward(eval);
    L.backward_data = dnnl::inner_product_backward_data({{x_md, L.w_md, y_md}, engine_, fwd});
    L.backward_weights =
        dnnl::inner_product_backward_weights({{x_md, L.w_md, L.b_md, y_md}, engine_, fwd});
    return L;
  }

  // act_[l + 1] = layer l's output for n images (ReLU after every layer but the last).
  void forward(const float* x, std::size_t n) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      Layer& L = layers_[l];
      (n == kBatch ? L.forward : L.forward_eval)
          .execute(stream_, {{DNNL_ARG_SRC, memory(batch_md(n, L.in), input(l, x))},
                             {DNNL_ARG_WEIGHTS, memory(L.w_md, L.w.data())},
                             {DNNL_ARG_BIAS, memory(L.b_md, L.b.data())},
                             {DNNL_ARG_DST, memory(batch_md(n, L.out), act_[l + 1].data())}});
      stream_.wait();
      if (l + 1 < layers_.size())
        for (std::size_t i = 0; i < n * static_cast<std::size_t>(L.out); ++i)
          act_[l + 1][i] = std::max(act_[l + 1][i], 0.0f);
    }
  }

  // Mean softmax cross-entropy of the training batch's logits; writes its gradient to grad_.back().
  float softmax_cross_entropy(const std::uint8_t* labels) {
    double loss = 0;
    for (std::size_t i = 0; i < kBatch; ++i) {
      const float* z = act_.back().data() + i * 10;
      float* dz = grad_.back().data() + i * 10;
      const float zmax = *std::max_element(z, z + 10);
      double sum = 0;
      for (int c = 0; c < 10; ++c) sum += std::exp(double(z[c] - zmax));
      for (int c = 0; c < 10; ++c)
        dz[c] =
            static_cast<float>((std::exp(double(z[c] - zmax)) / sum - (c == labels[i] ? 1 : 0)) /
                               static_cast<double>(kBatch));
      loss += std::log(sum) - double(z[labels[i]] - zmax);
    }
    return static_cast<float>(loss / static_cast<double>(kBatch));
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<Layer> layers_;
  std::vector<std::vector<float>> act_, grad_;  // per layer boundary: outputs and their gradients
};

// ---- Training -----------------------------------------------------------------------------
int main(int argc, char** argv) try {
  const std::string dir = argc > 1 && *argv[1] ? argv[1] : kDataDir;
  const std::size_t train_images = argc > 2 ? std::stoul(argv[2]) : 0;
  const int epochs = argc > 3 ? std::stoi(argv[3]) : kEpochsPerPhase;

  Split train = load(dir, "train"), test = load(dir, "t10k");
  const Split validation = hold_out(train, kValidation);
  if (train_images > 0 && train_images < train.count()) {
    train.images.resize(train_images * kPixels);
    train.labels.resize(train_images);
  }
  std::cout << "train " << train.count() << ", validation " << validation.count() << ", test "
            << test.count() << " images from " << dir << "\n";

  Mlp model;
  // dsd: every weight matrix wrapped as a view of the trainer's buffer (these are pruned), every
  // bias too (never handed to dsd::run, so never pruned; the same optimizer steps them).
  std::vector<dsd::Masked<std::vector<float>>> weights, biases;
  for (Layer& L : model.layers()) {
    weights.emplace_back(
        L.w, L.name, dsd::Shape{static_cast<std::size_t>(L.out), static_cast<std::size_t>(L.in)});
    biases.emplace_back(L.b, L.name + ".bias");
  }
  dsd::MomentumSgd opt{.lr = kLr, .momentum = kMomentum, .weight_decay = kWeightDecay};  // dsd

  std::mt19937_64 shuffle(kSeed);
  std::vector<std::size_t> order(train.count());
  std::vector<float> x(kBatch * kPixels);
  std::vector<std::uint8_t> y(kBatch);

  dsd::Callbacks cb;            // dsd: the trainer's side of the D -> S -> D loop
  cb.set_lr = dsd::lr_of(opt);  // dsd: the schedule sets opt.lr every epoch (/10 when re-densing)
  cb.train_epoch = [&](const dsd::EpochContext&) {  // dsd: one epoch of the ordinary loop
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), shuffle);
    const std::size_t batches = train.count() / kBatch;
    double loss = 0;
    for (std::size_t b = 0; b < batches; ++b) {
      for (std::size_t j = 0; j < kBatch; ++j) {
        const std::size_t i = order[b * kBatch + j];
        std::copy_n(train.images.begin() + static_cast<std::ptrdiff_t>(i * kPixels), kPixels,
                    x.begin() + static_cast<std::ptrdiff_t>(j * kPixels));
        y[j] = train.labels[i];
      }
      loss += model.train_batch(x.data(), y.data());
      for (std::size_t l = 0; l < weights.size(); ++l) {  // dsd: masked updates
        opt.step(weights[l], model.layers()[l].dw);
        opt.step(biases[l], model.layers()[l].db);
      }
    }
    return loss / static_cast<double>(batches);
  };
  cb.evaluate = [&] { return model.accuracy(validation); };  // dsd: scored after every epoch
  cb.progress = &std::cout;

  // dsd: dense, prune kSparsity of each weight matrix (Keepmax-Cut), sparse, re-dense at lr/10.
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
