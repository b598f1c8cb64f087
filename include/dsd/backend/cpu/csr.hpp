#pragma once
/// \file
/// CPU sparse x dense product of a pruned layer, Y = A X, with our own kernel (oneDNN 2.6 has no
/// sparse matmul). The layer's kept weights come from `dsd::to_csr(layer)` (dsd/csr.hpp).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

#include "dsd/config.hpp"
#include "dsd/csr.hpp"
#include "dsd/detail/parallel.hpp"
#include "dsd/error.hpp"

namespace dsd::cpu {

/// Y = A X, where X is `a.cols` x `batch` and Y is `a.rows` x `batch`, both row-major and
/// contiguous. Rows of Y are computed independently (in parallel for large matrices). `a` is
/// validated first (`dsd::validate`: one pass over its offsets and indices, cheap beside the
/// product), so a malformed matrix is a `dsd::error`, never a read out of bounds.
template <floating_scalar S>
void csr_matmul(const CsrMatrix<S>& a, std::type_identity_t<std::span<const S>> x, std::size_t batch,
                std::type_identity_t<std::span<S>> y) {
  validate(a);
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  DSD_REQUIRE(batch == 0 || (a.cols <= max / batch && a.rows <= max / batch), invalid_argument,
              "csr_matmul: ", a.rows, " x ", a.cols, " times a batch of ", batch,
              " overflows size_t");
  DSD_REQUIRE(x.size() == a.cols * batch, size_mismatch, "csr_matmul: X has ", x.size(),
              " elements, expected cols x batch = ", a.cols, " x ", batch);
  DSD_REQUIRE(y.size() == a.rows * batch, size_mismatch, "csr_matmul: Y has ", y.size(),
              " elements, expected rows x batch = ", a.rows, " x ", batch);
  const std::int64_t* rp = a.row_ptr.data();
  const std::int32_t* ci = a.col_idx.data();
  const S* v = a.values.data();
  const S* xp = x.data();
  S* yp = y.data();
  const std::size_t work = a.nnz() * batch;
  detail::parallel_chunks(
      a.rows, work >= detail::parallel_threshold ? 1 : a.rows + 1,
      [&](std::size_t rb, std::size_t re) {
        if (batch == 1) {  // sparse matrix x vector: a gathered dot product per row
          for (std::size_t r = rb; r < re; ++r) {
            S acc = 0;
            for (auto k = rp[r]; k < rp[r + 1]; ++k) acc += v[k] * xp[ci[k]];
            yp[r] = acc;
          }
          return;
        }
        for (std::size_t r = rb; r < re; ++r) {
          S* yr = yp + r * batch;
          for (std::size_t b = 0; b < batch; ++b) yr[b] = 0;
          for (auto k = rp[r]; k < rp[r + 1]; ++k) {
            const S vk = v[k];
            const S* xr = xp + static_cast<std::size_t>(ci[k]) * batch;
            DSD_PRAGMA_SIMD
            for (std::size_t b = 0; b < batch; ++b) yr[b] += vk * xr[b];
          }
        }
      });
}

}  // namespace dsd::cpu
