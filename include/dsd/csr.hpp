#pragma once
/// \file
/// Compressed sparse rows: the one CSR layout of dsd, for a mask's kept entries alone
/// (`CsrPattern`) or with a layer's kept weights (`CsrMatrix<S>`, which is a `CsrPattern`).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "dsd/error.hpp"
#include "dsd/mask.hpp"
#include "dsd/masked.hpp"
#include "dsd/tensor.hpp"

namespace dsd {

/// Where the kept entries of a `rows` x `cols` matrix are. Offsets are 64-bit (a layer may keep
/// more than 2^31 weights); column indices are 32-bit, which halves the index traffic of sparse
/// products, so `cols` is at most 2^31 - 1.
struct CsrPattern {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::int64_t> row_ptr;  ///< rows + 1 offsets into `col_idx`
  std::vector<std::int32_t> col_idx;  ///< column of each kept entry, increasing within a row

  [[nodiscard]] std::size_t nnz() const noexcept { return col_idx.size(); }
};

/// A CSR pattern with the value of every kept entry, in `col_idx` order.
template <floating_scalar S>
struct CsrMatrix : CsrPattern {
  std::vector<S> values;
};

/// CSR pattern of the kept entries of `m`, read as `shape.outer` rows of `shape.inner` entries.
template <mask_storage M>
[[nodiscard]] CsrPattern to_csr(const M& m, Shape shape) {
  DSD_REQUIRE(shape.inner <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
              invalid_argument, "CSR rows of ", shape.inner,
              " columns need more than the 32-bit column indices hold");
  DSD_REQUIRE(shape.size() == m.size(), size_mismatch, "shape ", shape.outer, "x", shape.inner,
              " has ", shape.size(), " entries but the mask has ", m.size());
  CsrPattern csr{shape.outer, shape.inner, std::vector<std::int64_t>(shape.outer + 1, 0), {}};
  csr.col_idx.reserve(m.count());
  m.for_each_kept([&](std::size_t i) {
    ++csr.row_ptr[i / shape.inner + 1];
    csr.col_idx.push_back(static_cast<std::int32_t>(i % shape.inner));
  });
  for (std::size_t r = 0; r < shape.outer; ++r) csr.row_ptr[r + 1] += csr.row_ptr[r];
  return csr;
}

/// The kept weights of a host layer as a CSR matrix over its storage-order shape
/// (rows = `Shape::outer`).
template <masked_parameter L>
  requires host_tensor<typename L::tensor_type>
[[nodiscard]] CsrMatrix<typename L::scalar_type> to_csr(const L& layer) {
  CsrMatrix<typename L::scalar_type> a{to_csr(layer.mask(), layer.shape()), {}};
  const auto w = layer.weights();
  a.values.reserve(a.nnz());
  layer.mask().for_each_kept([&](std::size_t i) { a.values.push_back(w[i]); });
  return a;
}

/// Throws `dsd::error` unless `csr` is a well-formed pattern: rows x cols fits in size_t, rows + 1
/// offsets starting at 0, never decreasing, ending at nnz, every column index in [0, cols), and
/// the columns of each row strictly increasing (no duplicates).
/// After it, nothing read through `row_ptr` or `col_idx` is out of bounds.
inline void validate(const CsrPattern& csr) {
  DSD_REQUIRE(csr.rows < std::numeric_limits<std::size_t>::max() &&
                  (csr.cols == 0 || csr.rows <= std::numeric_limits<std::size_t>::max() / csr.cols),
              invalid_argument, "CSR shape ", csr.rows, " x ", csr.cols, " overflows size_t");
  DSD_REQUIRE(!csr.row_ptr.empty() && csr.row_ptr.size() - 1 == csr.rows, size_mismatch,
              "CSR row_ptr has ", csr.row_ptr.size(), " entries, expected rows + 1 = ",
              csr.rows + 1);
  DSD_REQUIRE(csr.row_ptr.front() == 0 &&
                  csr.row_ptr.back() == static_cast<std::int64_t>(csr.col_idx.size()),
              invalid_argument,
              "CSR row_ptr must start at 0 and end at nnz = ", csr.col_idx.size());
  for (std::size_t r = 0; r < csr.rows; ++r)
    DSD_REQUIRE(csr.row_ptr[r] <= csr.row_ptr[r + 1], invalid_argument,
                "CSR row_ptr decreases at row ", r, " (", csr.row_ptr[r], " then ",
                csr.row_ptr[r + 1], ")");
  for (std::size_t k = 0; k < csr.col_idx.size(); ++k) {
    const auto c = csr.col_idx[k];
    DSD_REQUIRE(c >= 0 && static_cast<std::size_t>(c) < csr.cols, invalid_argument,
                "CSR column index ", c, " at position ", k, " is outside [0, ", csr.cols, ")");
  }
  for (std::size_t r = 0; r < csr.rows; ++r)  // the layout's promise: columns increase in a row
    for (auto k = csr.row_ptr[r] + 1; k < csr.row_ptr[r + 1]; ++k)
      DSD_REQUIRE(csr.col_idx[static_cast<std::size_t>(k - 1)] < csr.col_idx[static_cast<std::size_t>(k)],
                  invalid_argument, "CSR columns of row ", r, " do not increase at position ", k,
                  " (", csr.col_idx[static_cast<std::size_t>(k - 1)], " then ",
                  csr.col_idx[static_cast<std::size_t>(k)], ")");
}

/// Throws unless `a` is a valid pattern (see `validate(const CsrPattern&)`) with one value per
/// kept entry.
template <floating_scalar S>
void validate(const CsrMatrix<S>& a) {
  validate(static_cast<const CsrPattern&>(a));
  DSD_REQUIRE(a.values.size() == a.col_idx.size(), size_mismatch, "CSR matrix has ",
              a.values.size(), " values for ", a.col_idx.size(), " column indices");
}

/// Mask whose kept entries are exactly those listed in a CSR pattern; validates the pattern.
template <mask_storage M = BitMask>
[[nodiscard]] M from_csr(const CsrPattern& csr) {
  validate(csr);  // everything is checked before anything is read through an index
  M m(csr.rows * csr.cols, false);
  for (std::size_t r = 0; r < csr.rows; ++r)
    for (auto k = csr.row_ptr[r]; k < csr.row_ptr[r + 1]; ++k)
      m.set(r * csr.cols + static_cast<std::size_t>(csr.col_idx[static_cast<std::size_t>(k)]), true);
  return m;
}

}  // namespace dsd
