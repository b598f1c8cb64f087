#pragma once
/// \file
/// Atomic file replacement: write a temporary of its own in the same directory, flush and fsync it, rename
/// it over the target, fsync the directory. A failure at any point removes the temporary and
/// leaves the previous file untouched.

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dsd/error.hpp"

#if __has_include(<unistd.h>)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace dsd::io {

/// Replaces `path` with the concatenation of `parts`, atomically.
inline void write_atomic(const std::filesystem::path& path,
                         const std::vector<std::span<const std::byte>>& parts) {
  // A temporary of its own (a fresh name, O_EXCL), so concurrent writers of one path never share
  // it; the last rename wins and every reader sees one complete file. Created with mode 0666 so
  // the kernel applies the process umask, as for any file the program writes (mkstemp's 0600
  // would make checkpoints private; forcing 0644 would ignore a 077 umask).
  std::filesystem::path tmp;
  std::FILE* f = nullptr;
#if __has_include(<unistd.h>)
  static std::atomic<std::uint64_t> counter{0};
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    const std::uint64_t n = counter.fetch_add(1) ^ (static_cast<std::uint64_t>(
                                                       std::random_device{}()) << 20);
    tmp = path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  DSD_REQUIRE(fd >= 0, io, "cannot create a temporary next to \"", path.string(), "\"");
  f = ::fdopen(fd, "wb");
  if (f == nullptr) ::close(fd);
#else
  tmp = path.string() + ".tmp";
  f = std::fopen(tmp.c_str(), "wb");
#endif
  try {
    DSD_REQUIRE(f != nullptr, io, "cannot create \"", tmp.string(), "\"");
    bool ok = true;
    for (const auto& p : parts)
      ok = ok && (p.empty() || std::fwrite(p.data(), 1, p.size(), f) == p.size());
    ok = ok && std::fflush(f) == 0;
#if __has_include(<unistd.h>)
    ok = ok && ::fsync(::fileno(f)) == 0;
#endif
    ok = (std::fclose(f) == 0) && ok;
    DSD_REQUIRE(ok, io, "writing \"", tmp.string(), "\" failed (disk full or I/O error)");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    DSD_REQUIRE(!ec, io, "cannot replace \"", path.string(), "\" (", ec.message(), ")");
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
#if __has_include(<unistd.h>)
  const std::filesystem::path dir = path.parent_path();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
#endif
}

/// Replaces `path` with `text`, atomically.
inline void write_atomic(const std::filesystem::path& path, std::string_view text) {
  write_atomic(path, {std::as_bytes(std::span<const char>(text.data(), text.size()))});
}

}  // namespace dsd::io
