#pragma once
// The DSD paper's CNNs as libtorch modules, written to torchvision 0.14's definitions: every
// parameter's name, shape and registration order equal to Python's `torchvision.models.NAME()`
// (test_paper_nets compares them with Debian's python3-torchvision at test time); and the
// paper's own AlexNet, BVLC Caffe's grouped model, which torchvision does not define
// (CaffeAlexNet: Caffe's layer names and forward, 60,965,224 parameters). Parameter totals of
// the torchvision ones: AlexNet 61,100,840 (one tower), VGG-16 138,357,544, GoogLeNet 6,624,904
// (13,004,888 with its two auxiliary heads), ResNet-18/50/152 11,689,512 / 25,557,032 /
// 60,192,808, SqueezeNet 1.0 1,248,424.
// Their forward passes are torchvision's too (eval-mode GoogLeNet returns the main head only).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace experiments::paper {

namespace nn = torch::nn;

inline nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride = 1,
                       std::int64_t pad = 0, bool bias = true) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}
inline nn::MaxPool2d max_pool(std::int64_t k, std::int64_t stride, std::int64_t pad = 0, bool ceil = false) {
  return nn::MaxPool2d(nn::MaxPool2dOptions(k).stride(stride).padding(pad).ceil_mode(ceil));
}

/// torchvision.models.AlexNet: five convolutions, three fully connected layers.
struct AlexNetImpl : nn::Module {
  nn::Sequential features{conv(3, 64, 11, 4, 2), nn::ReLU(), max_pool(3, 2),
                          conv(64, 192, 5, 1, 2), nn::ReLU(), max_pool(3, 2),
                          conv(192, 384, 3, 1, 1), nn::ReLU(), conv(384, 256, 3, 1, 1), nn::ReLU(),
                          conv(256, 256, 3, 1, 1), nn::ReLU(), max_pool(3, 2)};
  nn::AdaptiveAvgPool2d avgpool{nn::AdaptiveAvgPool2dOptions({6, 6})};
  nn::Sequential classifier{nn::Dropout(0.5), nn::Linear(256 * 6 * 6, 4096), nn::ReLU(),
                            nn::Dropout(0.5), nn::Linear(4096, 4096), nn::ReLU(),
                            nn::Linear(4096, 1000)};
  AlexNetImpl() {
    register_module("features", features);
    register_module("avgpool", avgpool);
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier->forward(avgpool->forward(features->forward(x)).flatten(1));
  }
};
TORCH_MODULE(AlexNet);

inline nn::Conv2d grouped_conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t pad,
                               std::int64_t groups) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).padding(pad).groups(groups));
}

/// The AlexNet the paper pruned: BVLC Caffe's `models/bvlc_alexnet` (two towers, so conv2, conv4
/// and conv5 are grouped in two; LRN of 5 channels, alpha 1e-4, beta 0.75 after relu1 and relu2),
/// with Caffe's layer names (conv1.weight, ..., fc8.bias) and 60,965,224 parameters. Its pools
/// round up as Caffe's do, so 224 x 224 inputs reach fc6 at 6 x 6 like Caffe's 227 x 227 crops.
struct CaffeAlexNetImpl : nn::Module {
  nn::Conv2d conv1{conv(3, 96, 11, 4)}, conv2{grouped_conv(96, 256, 5, 2, 2)},
      conv3{conv(256, 384, 3, 1, 1)}, conv4{grouped_conv(384, 384, 3, 1, 2)},
      conv5{grouped_conv(384, 256, 3, 1, 2)};
  nn::LocalResponseNorm norm{nn::LocalResponseNormOptions(5).alpha(1e-4).beta(0.75).k(1.0)};
  nn::MaxPool2d pool{max_pool(3, 2, 0, /*ceil=*/true)};
  nn::Linear fc6{256 * 6 * 6, 4096}, fc7{4096, 4096}, fc8{4096, 1000};
  nn::Dropout drop{0.5};
  CaffeAlexNetImpl() {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("conv3", conv3);
    register_module("conv4", conv4);
    register_module("conv5", conv5);
    register_module("fc6", fc6);
    register_module("fc7", fc7);
    register_module("fc8", fc8);
    register_module("norm", norm);  // no parameters: registered so train() and eval() reach them
    register_module("pool", pool);
    register_module("drop", drop);
  }
  /// The side of pool5's output for square inputs of `image` pixels (fc6 takes 6: 199 to 230).
  static std::int64_t pool5_side(std::int64_t image) {
    const auto pooled = [](std::int64_t n) { return n < 2 ? 0 : (n - 2) / 2 + 1; };  // 3/2, rounding up
    return image < 11 ? 0 : pooled(pooled(pooled((image - 11) / 4 + 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = pool->forward(norm->forward(torch::relu(conv1->forward(x))));
    y = pool->forward(norm->forward(torch::relu(conv2->forward(y))));
    y = torch::relu(conv4->forward(torch::relu(conv3->forward(y))));
    y = pool->forward(torch::relu(conv5->forward(y))).flatten(1);
    y = drop->forward(torch::relu(fc6->forward(y)));
    return fc8->forward(drop->forward(torch::relu(fc7->forward(y))));
  }
};
TORCH_MODULE(CaffeAlexNet);

/// torchvision.models.vgg16: configuration "D", 13 convolutions of 3x3, no BatchNorm.
struct Vgg16Impl : nn::Module {
  nn::Sequential features;
  nn::AdaptiveAvgPool2d avgpool{nn::AdaptiveAvgPool2dOptions({7, 7})};
  nn::Sequential classifier{nn::Linear(512 * 7 * 7, 4096), nn::ReLU(), nn::Dropout(0.5),
                            nn::Linear(4096, 4096), nn::ReLU(), nn::Dropout(0.5),
                            nn::Linear(4096, 1000)};
  Vgg16Impl() {
    std::int64_t in = 3;
    for (const int c : {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}) {
      if (c == 0) {
        features->push_back(max_pool(2, 2));
      } else {
        features->push_back(conv(in, c, 3, 1, 1));
        features->push_back(nn::ReLU());
        in = c;
      }
    }
    register_module("features", features);
    register_module("avgpool", avgpool);
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier->forward(avgpool->forward(features->forward(x)).flatten(1));
  }
};
TORCH_MODULE(Vgg16);

/// torchvision's ResNet blocks: BasicBlock (ResNet-18/34) and Bottleneck (50/101/152, the stride
/// on the 3x3 convolution as in torchvision's "ResNet V1.5").
struct ResBlockImpl : nn::Module {
  bool bottleneck;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
  ResBlockImpl(bool is_bottleneck, std::int64_t in, std::int64_t planes, std::int64_t stride)
      : bottleneck(is_bottleneck) {
    const std::int64_t out = bottleneck ? planes * 4 : planes;
    if (bottleneck) {
      conv1 = register_module("conv1", conv(in, planes, 1, 1, 0, false));
      bn1 = register_module("bn1", nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1, false));
      bn2 = register_module("bn2", nn::BatchNorm2d(planes));
      conv3 = register_module("conv3", conv(planes, out, 1, 1, 0, false));
      bn3 = register_module("bn3", nn::BatchNorm2d(out));
    } else {
      conv1 = register_module("conv1", conv(in, planes, 3, stride, 1, false));
      bn1 = register_module("bn1", nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1, false));
      bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    }
    if (stride != 1 || in != out)
      downsample = register_module("downsample", nn::Sequential(conv(in, out, 1, stride, 0, false),
                                                                nn::BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(bn1->forward(conv1->forward(x)));
    y = bn2->forward(conv2->forward(y));
    if (bottleneck) y = bn3->forward(conv3->forward(torch::relu(y)));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
};
TORCH_MODULE(ResBlock);

/// torchvision.models.resnet18 / resnet50 / resnet152 (`depth` 18, 34, 50, 101 or 152).
struct ResNetImpl : nn::Module {
  nn::Conv2d conv1{conv(3, 64, 7, 2, 3, false)};
  nn::BatchNorm2d bn1{64};
  nn::MaxPool2d maxpool{max_pool(3, 2, 1)};
  std::vector<nn::Sequential> layers;
  nn::AdaptiveAvgPool2d avgpool{nn::AdaptiveAvgPool2dOptions({1, 1})};
  nn::Linear fc{nullptr};
  explicit ResNetImpl(int depth) {
    const bool bottleneck = depth >= 50;
    const std::vector<int> blocks = depth == 18    ? std::vector{2, 2, 2, 2}
                                    : depth == 34  ? std::vector{3, 4, 6, 3}
                                    : depth == 50  ? std::vector{3, 4, 6, 3}
                                    : depth == 101 ? std::vector{3, 4, 23, 3}
                                                   : std::vector{3, 8, 36, 3};
    TORCH_CHECK(depth == 18 || depth == 34 || depth == 50 || depth == 101 || depth == 152,
                "ResNet depth ", depth, " is not 18, 34, 50, 101 or 152");
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("maxpool", maxpool);
    std::int64_t in = 64;
    for (std::size_t s = 0; s < 4; ++s) {
      const std::int64_t planes = std::int64_t{64} << s;
      nn::Sequential stage;
      for (int b = 0; b < blocks[s]; ++b) {
        stage->push_back(ResBlock(bottleneck, in, planes, b == 0 && s > 0 ? 2 : 1));
        in = bottleneck ? planes * 4 : planes;
      }
      layers.push_back(register_module("layer" + std::to_string(s + 1), stage));
    }
    register_module("avgpool", avgpool);
    fc = register_module("fc", nn::Linear(in, 1000));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = maxpool->forward(torch::relu(bn1->forward(conv1->forward(x))));
    for (auto& stage : layers) y = stage->forward(y);
    return fc->forward(avgpool->forward(y).flatten(1));
  }
};
TORCH_MODULE(ResNet);

/// SqueezeNet's Fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated.
struct FireImpl : nn::Module {
  nn::Conv2d squeeze, expand1x1, expand3x3;
  FireImpl(std::int64_t in, std::int64_t s, std::int64_t e1, std::int64_t e3)
      : squeeze(register_module("squeeze", conv(in, s, 1))),
        expand1x1(register_module("expand1x1", conv(s, e1, 1))),
        expand3x3(register_module("expand3x3", conv(s, e3, 3, 1, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor y = torch::relu(squeeze->forward(x));
    return torch::cat({torch::relu(expand1x1->forward(y)), torch::relu(expand3x3->forward(y))}, 1);
  }
};
TORCH_MODULE(Fire);

/// torchvision.models.squeezenet1_0.
struct SqueezeNetImpl : nn::Module {
  nn::Sequential features{conv(3, 96, 7, 2), nn::ReLU(), max_pool(3, 2, 0, true),
                          Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128),
                          max_pool(3, 2, 0, true), Fire(256, 32, 128, 128), Fire(256, 48, 192, 192),
                          Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                          max_pool(3, 2, 0, true), Fire(512, 64, 256, 256)};
  nn::Sequential classifier{nn::Dropout(0.5), conv(512, 1000, 1), nn::ReLU(),
                            nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1}))};
  SqueezeNetImpl() {
    register_module("features", features);
    register_module("classifier", classifier);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return classifier->forward(features->forward(x)).flatten(1);
  }
};
TORCH_MODULE(SqueezeNet);

/// GoogLeNet's convolution: no bias, BatchNorm (eps 0.001), ReLU.
struct BasicConvImpl : nn::Module {
  nn::Conv2d conv_;
  nn::BatchNorm2d bn;
  BasicConvImpl(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride = 1, std::int64_t pad = 0)
      : conv_(register_module("conv", conv(in, out, k, stride, pad, false))),
        bn(register_module("bn", nn::BatchNorm2d(nn::BatchNorm2dOptions(out).eps(0.001)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn->forward(conv_->forward(x))); }
};
TORCH_MODULE(BasicConv);

/// GoogLeNet's Inception module (torchvision's: its "5x5" branch is a 3x3 convolution).
struct InceptionImpl : nn::Module {
  BasicConv branch1;
  nn::Sequential branch2, branch3, branch4;
  InceptionImpl(std::int64_t in, std::int64_t c1, std::int64_t c3r, std::int64_t c3, std::int64_t c5r,
                std::int64_t c5, std::int64_t pool)
      : branch1(register_module("branch1", BasicConv(in, c1, 1))),
        branch2(register_module("branch2", nn::Sequential(BasicConv(in, c3r, 1), BasicConv(c3r, c3, 3, 1, 1)))),
        branch3(register_module("branch3", nn::Sequential(BasicConv(in, c5r, 1), BasicConv(c5r, c5, 3, 1, 1)))),
        branch4(register_module("branch4", nn::Sequential(max_pool(3, 1, 1, true), BasicConv(in, pool, 1)))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({branch1->forward(x), branch2->forward(x), branch3->forward(x), branch4->forward(x)}, 1);
  }
};
TORCH_MODULE(Inception);

/// GoogLeNet's auxiliary classifier (training only).
struct InceptionAuxImpl : nn::Module {
  BasicConv conv_;
  nn::Linear fc1, fc2;
  explicit InceptionAuxImpl(std::int64_t in)
      : conv_(register_module("conv", BasicConv(in, 128, 1))),
        fc1(register_module("fc1", nn::Linear(2048, 1024))),
        fc2(register_module("fc2", nn::Linear(1024, 1000))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = conv_->forward(torch::adaptive_avg_pool2d(x, {4, 4})).flatten(1);
    y = torch::dropout(torch::relu(fc1->forward(y)), 0.7, is_training());
    return fc2->forward(y);
  }
};
TORCH_MODULE(InceptionAux);

/// torchvision.models.googlenet (`aux_logits`: the two auxiliary heads, as the paper trained
/// it; torchvision's 6,624,904 parameters are without them). `forward` gives the main logits;
/// `heads` gives them with, in training with the heads, the two auxiliary heads' logits (aux1,
/// aux2), as torchvision's GoogLeNetOutputs does; GoogLeNet's loss is CE(main) + 0.3 CE(aux1) +
/// 0.3 CE(aux2) (`loss`).
struct GoogLeNetImpl : nn::Module {
  BasicConv conv1{3, 64, 7, 2, 3}, conv2{64, 64, 1}, conv3{64, 192, 3, 1, 1};
  Inception inception3a{192, 64, 96, 128, 16, 32, 32}, inception3b{256, 128, 128, 192, 32, 96, 64},
      inception4a{480, 192, 96, 208, 16, 48, 64}, inception4b{512, 160, 112, 224, 24, 64, 64},
      inception4c{512, 128, 128, 256, 24, 64, 64}, inception4d{512, 112, 144, 288, 32, 64, 64},
      inception4e{528, 256, 160, 320, 32, 128, 128}, inception5a{832, 256, 160, 320, 32, 128, 128},
      inception5b{832, 384, 192, 384, 48, 128, 128};
  InceptionAux aux1{nullptr}, aux2{nullptr};
  nn::Linear fc{1024, 1000};
  explicit GoogLeNetImpl(bool aux_logits = false) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("conv3", conv3);
    for (auto& [name, m] : std::vector<std::pair<std::string, Inception*>>{
             {"inception3a", &inception3a}, {"inception3b", &inception3b}, {"inception4a", &inception4a},
             {"inception4b", &inception4b}, {"inception4c", &inception4c}, {"inception4d", &inception4d},
             {"inception4e", &inception4e}, {"inception5a", &inception5a}, {"inception5b", &inception5b}})
      register_module(name, *m);
    if (aux_logits) {
      aux1 = register_module("aux1", InceptionAux(512));
      aux2 = register_module("aux2", InceptionAux(528));
    }
    register_module("fc", fc);
  }
  torch::Tensor forward(const torch::Tensor& x) { return heads(x).front(); }
  /// GoogLeNet's training loss against labels `y`.
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) {
    const auto h = heads(x);
    torch::Tensor l = torch::nn::functional::cross_entropy(h[0], y);
    for (std::size_t i = 1; i < h.size(); ++i) l = l + 0.3 * torch::nn::functional::cross_entropy(h[i], y);
    return l;
  }
  std::vector<torch::Tensor> heads(const torch::Tensor& x) {
    const auto pool = [](const torch::Tensor& t, std::int64_t k, std::int64_t s) {
      return torch::max_pool2d(t, {k, k}, {s, s}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
    };
    torch::Tensor y = pool(conv1->forward(x), 3, 2);
    y = pool(conv3->forward(conv2->forward(y)), 3, 2);
    y = pool(inception3b->forward(inception3a->forward(y)), 3, 2);
    y = inception4a->forward(y);
    torch::Tensor a1, a2;
    const bool with_heads = aux1 && is_training();
    if (with_heads) a1 = aux1->forward(y);
    y = inception4d->forward(inception4c->forward(inception4b->forward(y)));
    if (with_heads) a2 = aux2->forward(y);
    y = pool(inception4e->forward(y), 2, 2);
    y = inception5b->forward(inception5a->forward(y));
    y = torch::dropout(torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1), 0.2, is_training());
    torch::Tensor out = fc->forward(y);
    if (with_heads) return {out, a1, a2};
    return {out};
  }
};
TORCH_MODULE(GoogLeNet);

/// A network as the trainers and tests hold it: the module (its parameters by name), its forward
/// pass, and its training loss against class labels (cross-entropy; GoogLeNet's with its heads).
struct Network {
  std::shared_ptr<nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> loss;
};

/// The torchvision networks by torchvision's name: "alexnet", "vgg16", "googlenet" (and
/// "googlenet_aux", with the auxiliary heads), "resnet18", "resnet50", "resnet152",
/// "squeezenet1_0"; and "alexnet_caffe", the paper's grouped AlexNet (CaffeAlexNet). Throws
/// std::invalid_argument for another name.
inline Network make_torchvision(const std::string& name) {
  const auto held = [](auto holder) {
    auto impl = holder.ptr();
    Network n{impl, [impl](const torch::Tensor& x) { return impl->forward(x); },
              [impl](const torch::Tensor& x, const torch::Tensor& y) {
                return torch::nn::functional::cross_entropy(impl->forward(x), y);
              }};
    if constexpr (requires { impl->loss(std::declval<torch::Tensor>(), std::declval<torch::Tensor>()); })
      n.loss = [impl](const torch::Tensor& x, const torch::Tensor& y) { return impl->loss(x, y); };
    return n;
  };
  if (name == "alexnet") return held(AlexNet());
  if (name == "alexnet_caffe") return held(CaffeAlexNet());
  if (name == "vgg16") return held(Vgg16());
  if (name == "googlenet") return held(GoogLeNet(false));
  if (name == "googlenet_aux") return held(GoogLeNet(true));
  if (name == "resnet18") return held(ResNet(18));
  if (name == "resnet50") return held(ResNet(50));
  if (name == "resnet152") return held(ResNet(152));
  if (name == "squeezenet1_0") return held(SqueezeNet());
  throw std::invalid_argument("no torchvision network \"" + name + "\"");
}

}  // namespace experiments::paper
