#pragma once
/// \file
/// `detail::Owned`: a CUDA-library handle, descriptor or event owned by value, released once.

#include <utility>

namespace dsd::cuda::detail {

/// A library handle or descriptor owned by value: `Destroy` runs once, on the last owner.
template <class H, auto Destroy>
class Owned {
 public:
  Owned() = default;
  explicit Owned(H h) noexcept : h_(h) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Owned(Owned&& o) noexcept : h_(std::exchange(o.h_, H{})) {}
  Owned& operator=(Owned&& o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~Owned() {
    if (h_) Destroy(h_);
  }
  [[nodiscard]] H get() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != H{}; }

 private:
  H h_{};
};

}  // namespace dsd::cuda::detail
