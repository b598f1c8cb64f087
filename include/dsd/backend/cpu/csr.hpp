#pragma once
/// \file
/// CPU sparse x dense products of pruned layers: a layer's kept weights in CSR form and
/// Y = A X with our own kernel (oneDNN 2.6 has no sparse matmul).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "dsd/config.hpp"
#include "dsd/detail/parallel.hpp"
#include "dsd/error.hpp"
#include "dsd/masked.hpp"

namespace dsd::cpu {

/// A sparse matrix in compressed sparse row form (32-bit column indices halve index traffic).
template <floating_scalar S>
struct CsrMatrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::int64_t> row_ptr;  ///< rows + 1 offsets
  std::vector<std::int32_t> col_idx;  ///< column of each stored value, increasing within a row
  std::vector<S> values;

  [[nodiscard]] std::size_t nnz() const noexcept { return values.size(); }
};

/// The kept weights of a layer as a CSR matrix over its storage-order shape (rows = `outer`).
template <masked_parameter L>
[[nodiscard]] CsrMatrix<typename L::scalar_type> to_csr(const L& layer) {
  const Shape shape = layer.shape();
  DSD_REQUIRE(shape.inner <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
              invalid_argument, "layer \"", layer.name(), "\" has ", shape.inner,
              " columns, more than 32-bit CSR indices hold");
  const auto w = layer.weights();
  CsrMatrix<typename L::scalar_type> a{
      shape.outer, shape.inner, std::vector<std::int64_t>(shape.outer + 1, 0), {}, {}};
  const std::size_t kept = layer.mask().count();
  a.col_idx.reserve(kept);
  a.values.reserve(kept);
  layer.mask().for_each_kept([&](std::size_t i) {
    ++a.row_ptr[i / shape.inner + 1];
    a.col_idx.push_back(static_cast<std::int32_t>(i % shape.inner));
    a.values.push_back(w[i]);
  });
  for (std::size_t r = 0; r < shape.outer; ++r) a.row_ptr[r + 1] += a.row_ptr[r];
  return a;
}

/// Y = A X, where X is `a.cols` x `batch` and Y is `a.rows` x `batch`, both row-major and
/// contiguous. Rows of Y are computed independently (in parallel for large matrices).
template <floating_scalar S>
void csr_matmul(const CsrMatrix<S>& a, const S* x, std::size_t batch, S* y) {
  DSD_REQUIRE(a.row_ptr.size() == a.rows + 1 && a.col_idx.size() == a.values.size(), size_mismatch,
              "csr_matmul: inconsistent CSR matrix (", a.row_ptr.size(), " row offsets for ",
              a.rows, " rows, ", a.col_idx.size(), " indices for ", a.values.size(), " values)");
  const std::int64_t* rp = a.row_ptr.data();
  const std::int32_t* ci = a.col_idx.data();
  const S* v = a.values.data();
  const std::size_t work = a.nnz() * batch;
  detail::parallel_chunks(
      a.rows, work >= detail::parallel_threshold ? 1 : a.rows + 1,
      [&](std::size_t rb, std::size_t re) {
        if (batch == 1) {  // sparse matrix x vector: a gathered dot product per row
          for (std::size_t r = rb; r < re; ++r) {
            S acc = 0;
            for (auto k = rp[r]; k < rp[r + 1]; ++k) acc += v[k] * x[ci[k]];
            y[r] = acc;
          }
          return;
        }
        for (std::size_t r = rb; r < re; ++r) {
          S* yr = y + r * batch;
          for (std::size_t b = 0; b < batch; ++b) yr[b] = 0;
          for (auto k = rp[r]; k < rp[r + 1]; ++k) {
            const S vk = v[k];
            const S* xr = x + static_cast<std::size_t>(ci[k]) * batch;
            DSD_PRAGMA_SIMD
            for (std::size_t b = 0; b < batch; ++b) yr[b] += vk * xr[b];
          }
        }
      });
}

}  // namespace dsd::cpu
