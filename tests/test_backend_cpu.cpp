#include <doctest/doctest.h>

#include <cstdint>
#include <dsd/backend/cpu/csr.hpp>
#include <dsd/dsd.hpp>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

TEST_CASE_TEMPLATE("a pruned layer's CSR form holds exactly its kept weights", S, float, double) {
  auto w = dsd_test::uniform<S>(6 * 10, 3);
  dsd::Masked layer(dsd::raw_tensor<S>{w.data(), w.size(), {6, 10}}, "fc");
  dsd::prune(layer, 0.7);
  const auto a = dsd::to_csr(layer);
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
      const auto a = dsd::to_csr(layer);
      const auto x = dsd_test::uniform<S>(cols * batch, 9);
      std::vector<S> y(rows * batch, S(-1)), ref(rows * batch, S(0));
      dsd::cpu::csr_matmul(a, x, batch, y);
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
  dsd::CsrMatrix<float> a{{2, 2, {0, 1}, {0}}, {1.0f}};
  std::vector<float> x(2), y(2);
  CHECK_THROWS_AS(dsd::cpu::csr_matmul(a, x, 1, y), dsd::error);
  // Sizes that match but indices that point outside X: read out of bounds before
  dsd::CsrMatrix<float> far{{2, 2, {0, 1, 2}, {0, 7}}, {1.0f, 2.0f}};
  CHECK_THROWS_WITH_AS(dsd::cpu::csr_matmul(far, x, 1, y),
                       "dsd: CSR column index 7 at position 1 is outside [0, 2)", dsd::error);
  dsd::CsrMatrix<float> past{{2, 2, {0, 1, 9}, {0, 1}}, {1.0f, 2.0f}};
  CHECK_THROWS_WITH_AS(dsd::cpu::csr_matmul(past, x, 1, y),
                       "dsd: CSR row_ptr must start at 0 and end at nnz = 2", dsd::error);
}

TEST_CASE("csr_matmul checks the sizes of X and Y against the matrix and the batch") {
  std::vector<float> w{1, 0, 2, 0, 3, 0};
  dsd::Masked layer(dsd::raw_tensor<float>{w.data(), w.size(), {2, 3}}, "fc");
  dsd::prune(layer, 0.5);
  const auto a = dsd::to_csr(layer);
  std::vector<float> x(3 * 4), y(2 * 4), short_x(3 * 4 - 1), short_y(2 * 3);
  CHECK_THROWS_WITH_AS(dsd::cpu::csr_matmul(a, short_x, 4, y),
                       "dsd: csr_matmul: X has 11 elements, expected cols x batch = 3 x 4",
                       dsd::error);
  CHECK_THROWS_WITH_AS(dsd::cpu::csr_matmul(a, x, 4, short_y),
                       "dsd: csr_matmul: Y has 6 elements, expected rows x batch = 2 x 4",
                       dsd::error);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
  dsd::cpu::csr_matmul(a, x, 4, y);
  // Pruning 3 of 6 removes the three zeros: row 0 keeps 1 and 2 (columns 0, 2), row 1 keeps 3
  // (column 1), so y0 = x0 + 2 x2 and y1 = 3 x1 with X's rows 1..4, 5..8, 9..12.
  CHECK(a.nnz() == 3);
  CHECK(y == std::vector<float>{19, 22, 25, 28, 15, 18, 21, 24});
}

TEST_CASE("a CSR pattern holds 32-bit columns and refuses rows too long for them") {
  const dsd::BitMask m(4, true);  // the column count is checked before the size
  CHECK_THROWS_WITH_AS((void)dsd::to_csr(m, dsd::Shape{1, std::size_t{1} << 31}),
                       "dsd: CSR rows of 2147483648 columns need more than the 32-bit column "
                       "indices hold",
                       dsd::error);
  const auto wide = dsd::to_csr(dsd::BitMask(6, true), dsd::Shape{2, 3});
  static_assert(std::is_same_v<decltype(wide.col_idx)::value_type, std::int32_t>);
  CHECK(wide.col_idx == std::vector<std::int32_t>{0, 1, 2, 0, 1, 2});
}
