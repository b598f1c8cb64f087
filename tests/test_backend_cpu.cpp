#include <doctest/doctest.h>

#include <dsd/backend/cpu/csr.hpp>
#include <dsd/dsd.hpp>
#include <vector>

#include "test_util.hpp"

TEST_CASE_TEMPLATE("a pruned layer's CSR form holds exactly its kept weights", S, float, double) {
  auto w = dsd_test::uniform<S>(6 * 10, 3);
  dsd::Masked layer(dsd::raw_tensor<S>{w.data(), w.size(), {6, 10}}, "fc");
  dsd::prune(layer, 0.7);
  const auto a = dsd::cpu::to_csr(layer);
  CHECK(a.rows == 6);
  CHECK(a.cols == 10);
  CHECK(a.nnz() == 18);
  const auto pattern = dsd::to_csr(layer.mask(), layer.shape());
  CHECK(a.row_ptr == pattern.row_ptr);
  for (std::size_t r = 0; r < 6; ++r)
    for (auto k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k)
      CHECK(a.values[static_cast<std::size_t>(k)] ==
            w[r * 10 + static_cast<std::size_t>(a.col_idx[static_cast<std::size_t>(k)])]);
}

TEST_CASE_TEMPLATE("csr_matmul equals the dense product of the masked weights", S, float, double) {
  for (std::size_t batch : {1u, 3u, 64u}) {
    for (std::size_t rows : {1u, 37u, 600u}) {  // 600 x 300 x 64 is large enough for the threads
      const std::size_t cols = 300;
      auto w = dsd_test::uniform<S>(rows * cols, rows + batch);
      dsd::Masked layer(dsd::raw_tensor<S>{w.data(), w.size(), {rows, cols}}, "fc");
      dsd::prune(layer, 0.8);
      const auto a = dsd::cpu::to_csr(layer);
      const auto x = dsd_test::uniform<S>(cols * batch, 9);
      std::vector<S> y(rows * batch, S(-1)), ref(rows * batch, S(0));
      dsd::cpu::csr_matmul(a, x.data(), batch, y.data());
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
          for (std::size_t b = 0; b < batch; ++b)
            ref[r * batch + b] += w[r * cols + c] * x[c * batch + b];
      for (std::size_t i = 0; i < y.size(); ++i)
        REQUIRE(double(y[i]) ==
                doctest::Approx(double(ref[i])).epsilon(std::is_same_v<S, float> ? 1e-4 : 1e-12));
    }
  }
}

TEST_CASE("csr_matmul rejects an inconsistent matrix") {
  dsd::cpu::CsrMatrix<float> a{2, 2, {0, 1}, {0}, {1.0f}};
  std::vector<float> x(2), y(2);
  CHECK_THROWS_AS(dsd::cpu::csr_matmul(a, x.data(), 1, y.data()), dsd::error);
}
