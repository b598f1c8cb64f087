#pragma once
/// \file
/// Library version and the one portability macro shared by CPU and CUDA code.

#define DSD_VERSION_MAJOR 0
#define DSD_VERSION_MINOR 1
#define DSD_VERSION_PATCH 0

/// Marks functions callable from host and device code; plain `inline` outside nvcc.
#if defined(__CUDACC__)
#define DSD_HOST_DEVICE __host__ __device__ inline
#else
#define DSD_HOST_DEVICE inline
#endif

/// Asks the compiler to vectorise the loop that follows. GCC gets `omp simd` (with OpenMP) or
/// `ivdep`; Clang vectorises these loops unprompted and warns when a forced hint cannot be met
/// (e.g. under sanitizers), so it gets none.
#if defined(__clang__)
#define DSD_PRAGMA_SIMD
#elif defined(_OPENMP)
#define DSD_PRAGMA_SIMD _Pragma("omp simd")
#elif defined(__GNUC__)
#define DSD_PRAGMA_SIMD _Pragma("GCC ivdep")
#else
#define DSD_PRAGMA_SIMD
#endif
