#pragma once
/// \file
/// `SparseLinear`: a pruned fully connected layer's products through cuSPARSE. The pattern of a
/// device layer's mask becomes CSR (int32 indices) once per prune; each step gathers the kept
/// values from the dense master weights, and
///   forward           Y  = X Wᵀ        cusparseSpMM on the CSR
///   backward (data)   dX = dY W        cusparseSpMM on a CSC copy (cusparseCsr2cscEx2), since
///                                      the transposed SpMM is not deterministic
///   backward (weight) dW = dYᵀ X on the pattern only, cusparseSDDMM, scattered into the dense
///                     gradient (entries off the pattern are left as they are: the masked
///                     optimizers never read them).
/// Matrices are row-major as the layer stores them: W is rows x cols = outputs x inputs
/// (`Shape{outer, inner}`), X is batch x inputs, Y batch x outputs. Everything is queued on the
/// layer's stream, the cuSPARSE calls too: the handle is bound to it for each call and given its
/// own stream back after, so one handle may serve layers on different streams. Whether this beats
/// a dense cuBLAS GEMM depends on device, shape, batch and density: `time_step_products` measures
/// it.

#include <cuda_runtime.h>
#include <cusparse.h>
#include <cub/device/device_scan.cuh>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_logic.hpp"
#include "dsd/backend/cuda/device_masked.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/launch.cuh"
#include "dsd/backend/cuda/libraries.cuh"

namespace dsd::cuda {

namespace kernels {
/// Kept entries per row of a rows x cols mask; one thread per row, whole words where possible.
template <int = 0>
__global__ void row_counts(const std::uint64_t* words, std::size_t rows, std::size_t cols, int* counts) {
  for (std::size_t r = global_thread(); r < rows; r += global_threads())
    counts[r] = static_cast<int>(dsd::detail::count_bits(words, r * cols, r * cols + cols));
}
/// Column (and row) index of every kept entry, in CSR order.
template <int = 0>
__global__ void fill_indices(const std::uint64_t* words, std::size_t rows, std::size_t cols,
                             const int* row_ptr, int* col_idx, int* row_idx) {
  for (std::size_t r = global_thread(); r < rows; r += global_threads()) {
    int out = row_ptr[r];
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t i = r * cols + c;
      if ((words[i >> 6] >> (i & 63)) & 1u) {
        col_idx[out] = static_cast<int>(c);
        row_idx[out] = static_cast<int>(r);
        ++out;
      }
    }
  }
}
template <class S>
__global__ void gather(const S* dense, const int* row_idx, const int* col_idx, std::size_t cols,
                       std::size_t nnz, S* vals) {
  for (std::size_t j = global_thread(); j < nnz; j += global_threads())
    vals[j] = dense[static_cast<std::size_t>(row_idx[j]) * cols + col_idx[j]];
}
template <class S>
__global__ void scatter(const S* vals, const int* row_idx, const int* col_idx, std::size_t cols,
                        std::size_t nnz, S* dense) {
  for (std::size_t j = global_thread(); j < nnz; j += global_threads())
    dense[static_cast<std::size_t>(row_idx[j]) * cols + col_idx[j]] = vals[j];
}
}  // namespace kernels

namespace detail {
template <class S>
constexpr cudaDataType_t data_type = std::is_same_v<S, float> ? CUDA_R_32F : CUDA_R_64F;
using SpMat = Owned<cusparseSpMatDescr_t, cusparseDestroySpMat>;
using DnMat = Owned<cusparseDnMatDescr_t, cusparseDestroyDnMat>;

template <class S>
DnMat column_major(std::size_t rows, std::size_t cols, const S* data) {
  cusparseDnMatDescr_t d = nullptr;
  DSD_CUSPARSE_CHECK(cusparseCreateDnMat(&d, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols),
                                         static_cast<std::int64_t>(rows), const_cast<S*>(data),
                                         data_type<S>, CUSPARSE_ORDER_COL));
  return DnMat(d);
}
}  // namespace detail

/// A pruned fully connected layer's sparse products (see the file comment).
template <class S>
class SparseLinear {
 public:
  /// The CSR pattern of `layer`'s mask; `layer` must outlive this object.
  SparseLinear(CusparseHandle& handle, const DeviceMasked<S>& layer) : handle_(&handle), layer_(&layer) {
    rebuild();
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::size_t nnz() const noexcept { return nnz_; }

  /// Takes the layer's current mask as the pattern (call after every prune or re-dense). Throws,
  /// leaving the previous pattern in place, when the pattern does not fit 32-bit indices.
  void rebuild() {
    const Shape shape = layer_->shape();
    DSD_REQUIRE(dsd::detail::fits_int32_csr(shape.outer, shape.inner, 0), invalid_argument,
                "SparseLinear: layer \"", layer_->name(), "\" of ", shape.outer, "x", shape.inner,
                " exceeds cuSPARSE's 32-bit indices");
    const std::size_t kept = layer_->mask().count();  // 64-bit; the int scan below would wrap
    DSD_REQUIRE(dsd::detail::fits_int32_csr(shape.outer, shape.inner, kept), invalid_argument,
                "SparseLinear: layer \"", layer_->name(), "\" of ", shape.outer, "x", shape.inner,
                " keeps ", kept, " weights, more than cuSPARSE's 32-bit indices hold (",
                dsd::detail::int32_csr_limit, ")");
    rows_ = shape.outer;
    cols_ = shape.inner;
    const cudaStream_t s = stream();
    const detail::CusparseStreamScope bound(handle_->get(), s);
    row_ptr_.reserve(rows_ + 1);
    DSD_CUDA_CHECK(cudaMemsetAsync(row_ptr_.data(), 0, (rows_ + 1) * sizeof(int), s));
    kernels::row_counts<><<<grid_for(rows_), block_size, 0, s>>>(layer_->mask().words(), rows_, cols_,
                                                                 row_ptr_.data());
    DSD_CUDA_CHECK(cudaGetLastError());
    std::size_t bytes = 0;
    DSD_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, row_ptr_.data(), row_ptr_.data(),
                                                 static_cast<int>(rows_ + 1), s));
    scan_temp_.reserve(bytes);
    DSD_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(scan_temp_.data(), bytes, row_ptr_.data(), row_ptr_.data(),
                                                 static_cast<int>(rows_ + 1), s));
    int nnz = 0;
    DSD_CUDA_CHECK(cudaMemcpyAsync(&nnz, row_ptr_.data() + rows_, sizeof nnz, cudaMemcpyDeviceToHost, s));
    DSD_CUDA_CHECK(cudaStreamSynchronize(s));
    nnz_ = static_cast<std::size_t>(nnz);
    const std::size_t cap = nnz_ > 0 ? nnz_ : 1;  // cuSPARSE wants valid pointers even when empty
    col_idx_.reserve(cap);
    row_idx_.reserve(cap);
    vals_.reserve(cap);
    grad_vals_.reserve(cap);
    csc_vals_.reserve(cap);
    csc_row_idx_.reserve(cap);
    csc_col_ptr_.reserve(cols_ + 1);
    kernels::fill_indices<><<<grid_for(rows_), block_size, 0, s>>>(layer_->mask().words(), rows_, cols_,
                                                                   row_ptr_.data(), col_idx_.data(),
                                                                   row_idx_.data());
    DSD_CUDA_CHECK(cudaGetLastError());
    csr_ = csr(rows_, cols_, nnz_, row_ptr_.data(), col_idx_.data(), vals_.data());
    grad_csr_ = csr(rows_, cols_, nnz_, row_ptr_.data(), col_idx_.data(), grad_vals_.data());
    csc_ = csr(cols_, rows_, nnz_, csc_col_ptr_.data(), csc_row_idx_.data(), csc_vals_.data());
    DSD_CUSPARSE_CHECK(cusparseCsr2cscEx2_bufferSize(
        handle_->get(), int(rows_), int(cols_), int(nnz_), vals_.data(), row_ptr_.data(), col_idx_.data(),
        csc_vals_.data(), csc_col_ptr_.data(), csc_row_idx_.data(), detail::data_type<S>,
        CUSPARSE_ACTION_NUMERIC, CUSPARSE_INDEX_BASE_ZERO, CUSPARSE_CSR2CSC_ALG1, &bytes));
    csc_temp_.reserve(bytes > 0 ? bytes : 1);
    batch_ = 0;  // products are prepared again for the new pattern
    refresh();
  }

  /// Gathers the kept values from the layer's dense weights (call after every optimizer step).
  void refresh() {
    if (nnz_ == 0) return;
    const detail::CusparseStreamScope bound(handle_->get(), stream());
    kernels::gather<<<grid_for(nnz_), block_size, 0, stream()>>>(layer_->weights().ptr, row_idx_.data(),
                                                                 col_idx_.data(), cols_, nnz_, vals_.data());
    DSD_CUDA_CHECK(cudaGetLastError());
    DSD_CUSPARSE_CHECK(cusparseCsr2cscEx2(handle_->get(), int(rows_), int(cols_), int(nnz_), vals_.data(),
                                          row_ptr_.data(), col_idx_.data(), csc_vals_.data(),
                                          csc_col_ptr_.data(), csc_row_idx_.data(), detail::data_type<S>,
                                          CUSPARSE_ACTION_NUMERIC, CUSPARSE_INDEX_BASE_ZERO,
                                          CUSPARSE_CSR2CSC_ALG1, csc_temp_.data()));
  }

  /// y (batch x rows) = x (batch x cols) Wᵀ.
  void forward(const S* x, S* y, std::size_t batch) {
    if (nnz_ == 0) return zero(y, batch * rows_);
    const detail::CusparseStreamScope bound(handle_->get(), stream());
    prepare(batch);
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(x_cols_.get(), const_cast<S*>(x)));
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(y_rows_.get(), y));
    DSD_CUSPARSE_CHECK(cusparseSpMM(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                    CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csr_.get(), x_cols_.get(),
                                    &zero_, y_rows_.get(), detail::data_type<S>, CUSPARSE_SPMM_ALG_DEFAULT,
                                    fwd_buf_.data()));
  }
  /// dx (batch x cols) = dy (batch x rows) W.
  void backward_data(const S* dy, S* dx, std::size_t batch) {
    if (nnz_ == 0) return zero(dx, batch * cols_);
    const detail::CusparseStreamScope bound(handle_->get(), stream());
    prepare(batch);
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(dy_rows_.get(), const_cast<S*>(dy)));
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(dx_cols_.get(), dx));
    DSD_CUSPARSE_CHECK(cusparseSpMM(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                    CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csc_.get(), dy_rows_.get(),
                                    &zero_, dx_cols_.get(), detail::data_type<S>, CUSPARSE_SPMM_ALG_DEFAULT,
                                    bwd_buf_.data()));
  }
  /// dW = dyᵀ x on the pattern, written into the dense gradient `dw` (rows x cols) at kept entries.
  void backward_weights(const S* dy, const S* x, S* dw, std::size_t batch) {
    if (nnz_ == 0) return;
    const detail::CusparseStreamScope bound(handle_->get(), stream());
    prepare(batch);
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(dy_rows_.get(), const_cast<S*>(dy)));
    DSD_CUSPARSE_CHECK(cusparseDnMatSetValues(x_cols_.get(), const_cast<S*>(x)));
    DSD_CUSPARSE_CHECK(cusparseSDDMM(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                     CUSPARSE_OPERATION_TRANSPOSE, &one_, dy_rows_.get(), x_cols_.get(),
                                     &zero_, grad_csr_.get(), detail::data_type<S>, CUSPARSE_SDDMM_ALG_DEFAULT,
                                     sddmm_buf_.data()));
    kernels::scatter<<<grid_for(nnz_), block_size, 0, stream()>>>(grad_vals_.data(), row_idx_.data(),
                                                                  col_idx_.data(), cols_, nnz_, dw);
    DSD_CUDA_CHECK(cudaGetLastError());
  }

 private:
  [[nodiscard]] cudaStream_t stream() const noexcept { return layer_->stream(); }
  void zero(S* p, std::size_t n) { DSD_CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(S), stream())); }

  static detail::SpMat csr(std::size_t rows, std::size_t cols, std::size_t nnz, int* ptr, int* idx,
                           S* vals) {
    cusparseSpMatDescr_t d = nullptr;
    DSD_CUSPARSE_CHECK(cusparseCreateCsr(&d, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols),
                                         static_cast<std::int64_t>(nnz), ptr, idx, vals, CUSPARSE_INDEX_32I,
                                         CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, detail::data_type<S>));
    return detail::SpMat(d);
  }

  /// Dense descriptors, workspaces and preprocessing for one batch size (and the pattern).
  void prepare(std::size_t batch) {
    // Checked first: batch_ is 0 until the first product, and an empty batch must not pass as
    // "already prepared" with no descriptors.
    DSD_REQUIRE(batch > 0, invalid_argument, "SparseLinear: empty batch");
    if (batch == batch_) return;
    // Scratch dense operands: the real pointers are set per call.
    scratch_.reserve(batch * (rows_ > cols_ ? rows_ : cols_));
    x_cols_ = detail::column_major<S>(cols_, batch, scratch_.data());   // x as cols x batch
    y_rows_ = detail::column_major<S>(rows_, batch, scratch_.data());   // y as rows x batch
    dy_rows_ = detail::column_major<S>(rows_, batch, scratch_.data());
    dx_cols_ = detail::column_major<S>(cols_, batch, scratch_.data());
    std::size_t bytes = 0;
    DSD_CUSPARSE_CHECK(cusparseSpMM_bufferSize(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                               CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csr_.get(), x_cols_.get(),
                                               &zero_, y_rows_.get(), detail::data_type<S>,
                                               CUSPARSE_SPMM_ALG_DEFAULT, &bytes));
    fwd_buf_.reserve(bytes > 0 ? bytes : 1);
    DSD_CUSPARSE_CHECK(cusparseSpMM_bufferSize(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                               CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csc_.get(), dy_rows_.get(),
                                               &zero_, dx_cols_.get(), detail::data_type<S>,
                                               CUSPARSE_SPMM_ALG_DEFAULT, &bytes));
    bwd_buf_.reserve(bytes > 0 ? bytes : 1);
    DSD_CUSPARSE_CHECK(cusparseSDDMM_bufferSize(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                                CUSPARSE_OPERATION_TRANSPOSE, &one_, dy_rows_.get(), x_cols_.get(),
                                                &zero_, grad_csr_.get(), detail::data_type<S>,
                                                CUSPARSE_SDDMM_ALG_DEFAULT, &bytes));
    sddmm_buf_.reserve(bytes > 0 ? bytes : 1);
    {
      DSD_CUSPARSE_CHECK(cusparseSpMM_preprocess(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csr_.get(),
                                                 x_cols_.get(), &zero_, y_rows_.get(), detail::data_type<S>,
                                                 CUSPARSE_SPMM_ALG_DEFAULT, fwd_buf_.data()));
      DSD_CUSPARSE_CHECK(cusparseSpMM_preprocess(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &one_, csc_.get(),
                                                 dy_rows_.get(), &zero_, dx_cols_.get(), detail::data_type<S>,
                                                 CUSPARSE_SPMM_ALG_DEFAULT, bwd_buf_.data()));
      DSD_CUSPARSE_CHECK(cusparseSDDMM_preprocess(handle_->get(), CUSPARSE_OPERATION_NON_TRANSPOSE,
                                                  CUSPARSE_OPERATION_TRANSPOSE, &one_, dy_rows_.get(),
                                                  x_cols_.get(), &zero_, grad_csr_.get(), detail::data_type<S>,
                                                  CUSPARSE_SDDMM_ALG_DEFAULT, sddmm_buf_.data()));
    }
    batch_ = batch;
  }

  CusparseHandle* handle_;
  const DeviceMasked<S>* layer_;
  std::size_t rows_ = 0, cols_ = 0, nnz_ = 0, batch_ = 0;
  DeviceBuffer<int> row_ptr_, col_idx_, row_idx_, csc_col_ptr_, csc_row_idx_;
  DeviceBuffer<S> vals_, grad_vals_, csc_vals_, scratch_;
  DeviceBuffer<unsigned char> scan_temp_, csc_temp_, fwd_buf_, bwd_buf_, sddmm_buf_;
  detail::SpMat csr_, grad_csr_, csc_;
  detail::DnMat x_cols_, y_rows_, dy_rows_, dx_cols_;
  S one_ = S(1), zero_ = S(0);
};

/// Times of one training step's products of a pruned FC layer, in milliseconds: on cuSPARSE
/// (refresh + SpMM + CSC SpMM + SDDMM and scatter) and on cuBLAS (three GEMMs on the masked dense
/// weights). Each is the best of 5 after a warm-up, with CUDA events, on scratch operands, all on
/// the layer's stream (the cuBLAS handle is bound to it meanwhile and given its stream back).
struct StepTimes {
  float sparse_ms = 0, dense_ms = 0;
  [[nodiscard]] bool sparse_pays() const noexcept { return sparse_ms < dense_ms; }
};

/// Measures `StepTimes` for `batch` on this device: the examples' dispatch rule, applied once per
/// pattern and batch size (the crossover depends on device, shape, batch and density).
template <class S>
StepTimes time_step_products(SparseLinear<S>& sparse, CublasHandle& cublas, const DeviceMasked<S>& layer,
                             std::size_t batch) {
  static_assert(std::is_same_v<S, float>, "time_step_products times float products");
  DSD_REQUIRE(batch > 0 && batch < std::size_t(std::numeric_limits<int>::max()), invalid_argument,
              "time_step_products: batch ", batch, " for layer \"", layer.name(),
              "\" must be positive and fit an int");
  const std::size_t rows = sparse.rows(), cols = sparse.cols();
  const cudaStream_t stream = layer.stream();
  DeviceBuffer<S> x(batch * cols), y(batch * rows), dx(batch * cols), dw(rows * cols);
  x.zero(stream);
  y.zero(stream);
  Event start(cudaEventDefault), stop(cudaEventDefault);  // timing events, released on a throw too
  const detail::CublasStreamScope bound(cublas.get(), stream);
  const auto best_of = [&](auto&& products) {
    products();
    float best = std::numeric_limits<float>::max();
    for (int rep = 0; rep < 5; ++rep) {
      start.record(stream);
      products();
      stop.record(stream);
      stop.synchronize();
      float ms = 0;
      DSD_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
      best = ms < best ? ms : best;
    }
    return best;
  };
  StepTimes t;
  t.sparse_ms = best_of([&] {
    sparse.refresh();
    sparse.forward(x.data(), y.data(), batch);
    sparse.backward_data(y.data(), dx.data(), batch);
    sparse.backward_weights(y.data(), x.data(), dw.data(), batch);
  });
  const float one = 1, zero = 0;
  const int m = int(rows), k = int(cols), n = int(batch);
  const S* w = layer.weights().ptr;
  t.dense_ms = best_of([&] {
    DSD_CUBLAS_CHECK(cublasSgemm(cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w, k, x.data(), k,
                                 &zero, y.data(), m));  // y = x Wᵀ
    DSD_CUBLAS_CHECK(cublasSgemm(cublas.get(), CUBLAS_OP_N, CUBLAS_OP_N, k, n, m, &one, w, k, y.data(), m,
                                 &zero, dx.data(), k));  // dx = dy W
    DSD_CUBLAS_CHECK(cublasSgemm(cublas.get(), CUBLAS_OP_N, CUBLAS_OP_T, k, m, n, &one, x.data(), k, y.data(),
                                 m, &zero, dw.data(), k));  // dW = dyᵀ x
  });
  return t;
}

}  // namespace dsd::cuda
