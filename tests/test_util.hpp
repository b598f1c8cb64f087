#pragma once
// Deterministic test data: std::mt19937_64's output sequence is fixed by the standard (its
// distributions are not), so values are built from raw bits here.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <random>
#include <vector>

namespace dsd_test {

/// A fresh directory under the system's temporary one, named by `prefix` and the process id,
/// removed with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "dsd_test")
      : path(std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// n values uniform in [-scale, scale), identical on every platform for a given seed.
template <class S>
std::vector<S> uniform(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::vector<S> v(n);
  for (auto& x : v)
    x = static_cast<S>((static_cast<double>(gen() >> 11) * 0x1p-53 * 2.0 - 1.0) * scale);
  return v;
}

}  // namespace dsd_test
