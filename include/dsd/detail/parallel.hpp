#pragma once
// The one place dsd goes parallel: static OpenMP chunks of an index range when OpenMP is on and
// the range is large enough to pay for it; a plain loop otherwise. Work is split by index only,
// so every result is independent of the thread count.

#include <cstddef>
#include <exception>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace dsd::detail {

/// Below this many items per call a loop stays on one thread.
inline constexpr std::size_t parallel_threshold = std::size_t{1} << 15;

/// How many chunks `parallel_chunks_indexed(n, min_items, f)` may call `f` with (chunk indices
/// lie below it): the thread count where the range goes parallel, else 1.
inline std::size_t parallel_chunk_count(std::size_t n, std::size_t min_items) noexcept {
#if defined(_OPENMP)
  const int threads = omp_get_max_threads();
  if (threads > 1 && n >= min_items && !omp_in_parallel()) return static_cast<std::size_t>(threads);
#endif
  (void)n;
  (void)min_items;
  return 1;
}

/// Calls `f(chunk, begin, end)` on disjoint chunks covering [0, n), possibly concurrently, with
/// `chunk` < `parallel_chunk_count(n, min_items)` distinct per call (a slot for per-chunk
/// scratch allocated beforehand). Chunks that cannot be split off get no call.
template <class F>
void parallel_chunks_indexed(std::size_t n, std::size_t min_items, F&& f) {
#if defined(_OPENMP)
  if (parallel_chunk_count(n, min_items) > 1) {
    // An exception may not leave an OpenMP region (it would call std::terminate): the first one
    // thrown by any chunk (a user's callable, a failed allocation) is caught there and rethrown
    // here, after every thread finished. A chunk that cannot throw gets no capture, whose landing
    // pads cost the mask builds 10-20 % at 16 M entries on 2 threads.
    constexpr bool nothrow = std::is_nothrow_invocable_v<F&, std::size_t, std::size_t, std::size_t>;
    std::exception_ptr error;
#pragma omp parallel num_threads(omp_get_max_threads())
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto nt = static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t begin = n * t / nt, end = n * (t + 1) / nt;
      if constexpr (nothrow) {
        if (begin < end) f(t, begin, end);
      } else {
        try {
          if (begin < end) f(t, begin, end);
        } catch (...) {
#pragma omp critical(dsd_parallel_error)
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  (void)min_items;
  if (n > 0) f(std::size_t{0}, std::size_t{0}, n);
}

/// Calls `f(begin, end)` on disjoint chunks covering [0, n), possibly concurrently.
template <class F>
void parallel_chunks(std::size_t n, std::size_t min_items, F&& f) {
  constexpr bool nothrow = std::is_nothrow_invocable_v<F&, std::size_t, std::size_t>;
  parallel_chunks_indexed(n, min_items, [&](std::size_t, std::size_t begin, std::size_t end) noexcept(
                                            nothrow) { f(begin, end); });
}

}  // namespace dsd::detail
