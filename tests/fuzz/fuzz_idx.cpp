// libFuzzer harness for the Fashion-MNIST reader (gzip + IDX): any file contents must end in
// success or a dsd::error naming the file.
#include <unistd.h>

#include <common/fashion_mnist.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/dsd-fuzz-idx-" + std::to_string(::getpid()) + ".gz";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  for (auto [magic, header, item] :
       {std::tuple{0x803u, 16u, fashion::Split::pixels}, std::tuple{0x801u, 8u, std::size_t{1}}}) {
    try {
      std::size_t count = 0;
      (void)fashion::detail::read_idx(path, magic, header, item, count);
    } catch (const dsd::error&) {
    }
  }
  return 0;
}
