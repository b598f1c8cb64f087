#pragma once
/// \file
/// `Event`: a CUDA event as an RAII value, and `order_after`, the one way the backend makes work
/// queued on one stream wait for work queued on another (a tensor's stream, a gradient's, a
/// library handle's), on the device and without a host wait.

#include <cuda_runtime.h>

#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/owned.cuh"

namespace dsd::cuda {

namespace detail {
inline void destroy_event(cudaEvent_t e) noexcept {
  cudaEventDestroy(e);  // an error here (e.g. the context is gone at exit) cannot be reported
}
}  // namespace detail

/// A CUDA event, created on first use (so a default-constructed one costs no CUDA call, and
/// needs no device) and destroyed once by its last owner, also when an exception unwinds past it.
class Event {
 public:
  /// `flags` as for `cudaEventCreateWithFlags`: by default without timing, the cheapest kind for
  /// ordering; pass `cudaEventDefault` to time with it.
  explicit Event(unsigned flags = cudaEventDisableTiming) noexcept : flags_(flags) {}
  /// The event, created now if it does not exist yet.
  [[nodiscard]] cudaEvent_t get() {
    if (!e_) {
      cudaEvent_t e = nullptr;
      DSD_CUDA_CHECK(cudaEventCreateWithFlags(&e, flags_));
      e_ = detail::Owned<cudaEvent_t, detail::destroy_event>(e);
    }
    return e_.get();
  }
  /// Captures the work queued on `stream` so far.
  void record(cudaStream_t stream) { DSD_CUDA_CHECK(cudaEventRecord(get(), stream)); }
  /// Makes later work on `stream` wait, on the device, for the work the last `record` captured.
  void wait(cudaStream_t stream) { DSD_CUDA_CHECK(cudaStreamWaitEvent(stream, get(), 0)); }
  /// Waits on the host for the work the last `record` captured.
  void synchronize() { DSD_CUDA_CHECK(cudaEventSynchronize(get())); }

 private:
  detail::Owned<cudaEvent_t, detail::destroy_event> e_;
  unsigned flags_;
};

/// Makes work queued later on `waiter` wait for everything queued so far on `producer`, through
/// `carrier` (re-recorded; one event serves any number of such orderings). Nothing when they are
/// the same stream.
inline void order_after(cudaStream_t producer, cudaStream_t waiter, Event& carrier) {
  if (producer == waiter) return;
  carrier.record(producer);
  carrier.wait(waiter);
}

}  // namespace dsd::cuda
