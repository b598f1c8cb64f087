#pragma once
// Fashion-MNIST reader: the gzipped IDX files of the Debian package dataset-fashion-mnist
// (or any directory holding the same four files), decompressed with zlib.

#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include <dsd/error.hpp>

namespace fashion {

inline constexpr const char* default_dir = "/usr/share/datasets/fashion-mnist";

/// Images as rows of 784 floats in [0, 1] (standardised by `standardise`); labels 0..9.
struct Split {
  std::vector<float> images;
  std::vector<std::uint8_t> labels;
  std::size_t count = 0;
  static constexpr std::size_t pixels = 28 * 28;
};

namespace detail {
// Reads a whole .gz file; a truncated or corrupt stream is an error naming the file.
inline std::vector<std::uint8_t> gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  DSD_REQUIRE(f != nullptr, io, "cannot open \"", path,
              "\"; pass --data DIR with the Fashion-MNIST "
              "files (Debian package dataset-fashion-mnist)");
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 1 << 16> buf;
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    out.insert(out.end(), buf.data(), buf.data() + n);
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  const std::string what = msg ? msg : "";
  gzclose(f);
  DSD_REQUIRE(n == 0 && (err == Z_OK || err == Z_STREAM_END), io, "\"", path,
              "\" is not a valid gzip file (", what, ")");
  return out;
}

inline std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
         std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

// Parses an IDX file of the given magic and returns its payload and first dimension.
inline std::vector<std::uint8_t> read_idx(const std::string& path, std::uint32_t magic,
                                          std::size_t header, std::size_t item_bytes,
                                          std::size_t& count) {
  std::vector<std::uint8_t> b = gunzip(path);
  DSD_REQUIRE(b.size() >= header, io, "\"", path, "\" is truncated: ", b.size(),
              " bytes, shorter than its IDX header");
  DSD_REQUIRE(be32(b, 0) == magic, io, "\"", path, "\" has IDX magic ", be32(b, 0), ", expected ",
              magic);
  count = be32(b, 4);
  if (header == 16)
    DSD_REQUIRE(be32(b, 8) == 28 && be32(b, 12) == 28, io, "\"", path, "\" holds ", be32(b, 8), "x",
                be32(b, 12), " images, expected 28x28");
  DSD_REQUIRE(b.size() == header + count * item_bytes, io, "\"", path,
              "\" is truncated or padded: ", b.size() - header, " payload bytes for ", count,
              " items of ", item_bytes);
  return {b.begin() + static_cast<std::ptrdiff_t>(header), b.end()};
}
}  // namespace detail

/// Loads one split ("train" or "t10k") from `dir`.
inline Split load(const std::filesystem::path& dir, const std::string& split) {
  Split s;
  std::size_t n_labels = 0;
  const auto px = detail::read_idx((dir / (split + "-images-idx3-ubyte.gz")).string(), 0x803, 16,
                                   Split::pixels, s.count);
  s.labels =
      detail::read_idx((dir / (split + "-labels-idx1-ubyte.gz")).string(), 0x801, 8, 1, n_labels);
  DSD_REQUIRE(n_labels == s.count, io, split, ": ", s.count, " images but ", n_labels, " labels");
  for (auto l : s.labels) DSD_REQUIRE(l < 10, io, split, ": label ", int(l), " is outside 0..9");
  s.images.resize(px.size());
  for (std::size_t i = 0; i < px.size(); ++i) s.images[i] = static_cast<float>(px[i]) / 255.0f;
  return s;
}

/// Moves the last `n` examples of `from` into a new split (a validation set held out of train).
inline Split split_off(Split& from, std::size_t n) {
  DSD_REQUIRE(n < from.count, invalid_argument, "cannot hold out ", n, " of ", from.count,
              " examples");
  Split tail;
  tail.count = n;
  const std::size_t keep = from.count - n;
  tail.images.assign(from.images.begin() + static_cast<std::ptrdiff_t>(keep * Split::pixels),
                     from.images.end());
  tail.labels.assign(from.labels.begin() + static_cast<std::ptrdiff_t>(keep), from.labels.end());
  from.images.resize(keep * Split::pixels);
  from.labels.resize(keep);
  from.count = keep;
  return tail;
}

/// Standardises every split with the pixel mean and deviation of `train` (statistics are never
/// taken from held-out data).
inline void standardise(Split& train, std::initializer_list<Split*> others) {
  double sum = 0, sq = 0;
  for (float v : train.images) sum += v, sq += double(v) * v;
  const double n = static_cast<double>(train.images.size());
  const auto mean = static_cast<float>(sum / n);
  const auto inv = static_cast<float>(1.0 / std::sqrt(sq / n - (sum / n) * (sum / n)));
  for (Split* s : others)
    for (float& v : s->images) v = (v - mean) * inv;
  for (float& v : train.images) v = (v - mean) * inv;
}

}  // namespace fashion
