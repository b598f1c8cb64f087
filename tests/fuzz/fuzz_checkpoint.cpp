// libFuzzer harness: any bytes given to the safetensors reader and the checkpoint loader must
// end in success or a dsd::error, never a crash, a sanitizer report or another exception.
#include <cstddef>
#include <cstdint>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const dsd::io::File f(std::span<const char>(reinterpret_cast<const char*>(data), size),
                          "fuzz-input");
    for (const auto& [name, info] : f.tensors())
      if (info.dtype == "F32") (void)f.read<float>(name);
    std::vector<float> w(12, 0.0f);
    dsd::Masked fc(dsd::raw_tensor<float>{w.data(), 12, {3, 4}}, "fc");
    try {
      (void)dsd::io::read_loop_state(f);
    } catch (const dsd::error&) {
    }
    dsd::io::load_checkpoint(f, dsd::layers(fc));
  } catch (const dsd::error&) {
  }
  return 0;
}
