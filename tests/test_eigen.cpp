#include <doctest/doctest.h>

#include <Eigen/Core>
#include <dsd/adapters/eigen.hpp>
#include <dsd/dsd.hpp>

static_assert(dsd::parameter_tensor<Eigen::MatrixXf>);
static_assert(
    dsd::parameter_tensor<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>);
static_assert(dsd::parameter_tensor<Eigen::ArrayXd>);
static_assert(dsd::parameter_tensor<Eigen::Map<Eigen::MatrixXf>>);
static_assert(!dsd::parameter_tensor<Eigen::Map<const Eigen::MatrixXf>>);
static_assert(dsd::readable_tensor<Eigen::Map<const Eigen::MatrixXf>>);
static_assert(!dsd::parameter_tensor<Eigen::MatrixXi>);
static_assert(dsd::is_view_v<Eigen::Map<Eigen::VectorXf>> && !dsd::is_view_v<Eigen::MatrixXf>);

TEST_CASE("Eigen matrices are wrapped in place, with their storage-order shape") {
  Eigen::MatrixXf w(2, 3);  // column-major: storage runs down columns
  w << 1, -5, 3, -2, 4, -6;
  dsd::Masked layer(w, "fc");
  CHECK(layer.weights().data() == w.data());
  CHECK(layer.shape() == dsd::Shape{3, 2});
  dsd::prune(layer, 0.5);
  Eigen::MatrixXf expected(2, 3);
  expected << 0, -5, 0, 0, 4, -6;
  CHECK(w == expected);

  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> r(2, 4);
  r << 1, 2, 3, 4, 8, 7, 6, 5;
  dsd::Masked rm(r, "rm");
  CHECK(rm.shape() == dsd::Shape{2, 4});
  dsd::prune(rm, 0.5, dsd::NMCut<2, 4>{});
  CHECK(r(0, 0) == 0.0f);
  CHECK(r(0, 3) == 4.0f);
  CHECK(r(1, 0) == 8.0f);
  CHECK(r(1, 3) == 0.0f);
  const auto csr = dsd::to_csr(rm.mask(), rm.shape());
  CHECK(csr.row_ptr == std::vector<std::int64_t>{0, 2, 4});

  // The same [out = 2, in = 4] weights stored column-major: the reduction dimension (in) is the
  // storage's outer one, so 2:4 groups run along Shape::outer and prune what the row-major did.
  Eigen::MatrixXf c(2, 4);
  c << 1, 2, 3, 4, 8, 7, 6, 5;
  dsd::Masked cm(c, "cm");
  CHECK(cm.shape() == dsd::Shape{4, 2});
  dsd::prune(cm, 0.5, dsd::NMCut<2, 4, dsd::group_dim::outer>{});
  CHECK(c == r);
}

TEST_CASE("Eigen maps over a trainer's buffer and Eigen gradients work with the optimizers") {
  std::vector<double> buffer = {1, 2, 3, 4};
  Eigen::Map<Eigen::VectorXd> map(buffer.data(), 4);
  dsd::Masked layer(map, "mapped");
  CHECK(layer.weights().data() == buffer.data());
  dsd::prune(layer, 0.25);
  const Eigen::VectorXd grad = Eigen::VectorXd::Constant(4, 1.0);
  dsd::Sgd{.lr = 0.5}.step(layer, grad);
  CHECK(buffer == std::vector<double>{0, 1.5, 2.5, 3.5});
}

#include <dsd/adapters/eigen_tensor.hpp>

static_assert(dsd::parameter_tensor<Eigen::Tensor<float, 4>>);
static_assert(dsd::parameter_tensor<Eigen::TensorMap<Eigen::Tensor<double, 2, Eigen::RowMajor>>>);
static_assert(!dsd::parameter_tensor<Eigen::TensorMap<const Eigen::Tensor<float, 2>>>);
static_assert(!dsd::parameter_tensor<Eigen::Tensor<int, 2>>);

TEST_CASE("Eigen tensors (a conv kernel, a mapped buffer) are wrapped in place") {
  Eigen::Tensor<float, 4, Eigen::RowMajor> kernel(2, 3, 5, 5);  // out, in, kh, kw
  kernel.setConstant(1.0f);
  kernel(1, 2, 4, 4) = 3.0f;
  kernel(0, 0, 0, 0) = -2.0f;
  dsd::Masked conv(kernel, "conv1");
  CHECK(conv.weights().data() == kernel.data());
  CHECK(conv.shape() == dsd::Shape{30, 5});
  dsd::prune_exactly(conv, 148);  // everything but the two largest magnitudes
  CHECK(kernel(1, 2, 4, 4) == 3.0f);
  CHECK(kernel(0, 0, 0, 0) == -2.0f);
  CHECK(conv.mask().count() == 2);

  std::vector<double> buffer(12, 1.0);
  Eigen::TensorMap<Eigen::Tensor<double, 2>> map(buffer.data(), 3, 4);  // column-major
  dsd::Masked mapped(map, "mapped");
  CHECK(mapped.weights().data() == buffer.data());
  CHECK(mapped.shape() == dsd::Shape{4, 3});
}
