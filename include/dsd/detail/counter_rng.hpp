#pragma once
// Counter-based random numbers: the value at position i depends only on (seed, stream, i), so
// results are the same on every machine, standard library and thread count, and on the GPU:
// the generator is host-device code, so the CUDA backend draws the very same numbers.

#include <cstdint>
#include <string_view>

#include "dsd/config.hpp"

namespace dsd::detail {

/// SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
DSD_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Random 64-bit value number `i` of stream `stream` under `seed`.
DSD_HOST_DEVICE constexpr std::uint64_t counter_random(std::uint64_t seed, std::uint64_t stream,
                                       std::uint64_t i) noexcept {
  const std::uint64_t key = mix64(seed ^ mix64(stream + 0x9e3779b97f4a7c15ull));
  return mix64(key + (i + 1) * 0x9e3779b97f4a7c15ull);
}

/// The 53-bit integer behind RandomCut's score of position i: the score is this times 2^-53, so
/// ranking these integers ranks the scores, ties included.
DSD_HOST_DEVICE constexpr std::uint64_t random_cut_key(std::uint64_t seed, std::uint64_t stream,
                                                       std::uint64_t i) noexcept {
  return counter_random(seed, stream, i) >> 11;
}

/// FNV-1a hash of a name, used to give each layer its own random stream.
constexpr std::uint64_t fnv1a(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

}  // namespace dsd::detail
