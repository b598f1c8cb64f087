#pragma once
// What the libtorch tests share: libtorch before doctest (Debian's libtorch logs through glog,
// whose CHECK macros clash with doctest's: they are undefined before doctest defines its own),
// a count of the entries left nonzero where a mask prunes, and the directory of the TorchScript
// exports (tests/torch/export_torchvision.py) or nothing when they were skipped.
#include <dsd/adapters/torch.hpp>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <dsd/mask.hpp>

namespace dsd_torch_test {

/// Number of entries of `t` (float) that are nonzero where `mask` prunes.
inline std::size_t nonzero_where_pruned(const torch::Tensor& t, const dsd::BitMask& mask) {
  const auto c = t.contiguous();
  const float* x = c.data_ptr<float>();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < mask.size(); ++i) bad += !mask.test(i) && x[i] != 0.0f;
  return bad;
}

/// Every wrapped layer's entries left nonzero where its mask prunes, in the weights and in
/// their SGD momentum (DSD's invariant after `layers.enforce(opt)`): 0 when it holds. The
/// optimizer must have stepped every wrapped tensor (a missing momentum fails the test).
template <class Layers>
std::size_t nonzero_pruned_state(const Layers& layers, torch::optim::SGD& opt) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    bad += nonzero_where_pruned(layers.parameter(i), layers[i].mask());
    const auto key = c10::guts::to_string(layers.parameter(i).unsafeGetTensorImpl());
    REQUIRE_MESSAGE(opt.state().count(key) == 1, "the optimizer has no state for ", layers[i].name());
    auto& state = static_cast<torch::optim::SGDParamState&>(*opt.state().at(key));
    REQUIRE(state.momentum_buffer().defined());
    bad += nonzero_where_pruned(state.momentum_buffer(), layers[i].mask());
  }
  return bad;
}

/// DSD_TORCHSCRIPT_DIR (ctest sets it), or nothing when the export there was skipped (no
/// python3-torchvision): the test then prints "skipped: ...", which ctest reports as a skip
/// (SKIP_REGULAR_EXPRESSION).
inline std::optional<std::filesystem::path> torchscript_dir() {
  const char* dir = std::getenv("DSD_TORCHSCRIPT_DIR");
  REQUIRE_MESSAGE(dir != nullptr, "DSD_TORCHSCRIPT_DIR is not set (ctest sets it)");
  if (!std::filesystem::exists(std::filesystem::path(dir) / "exported")) {
    std::cout << "skipped: no TorchScript exports in " << dir << " (python3-torchvision missing)\n";
    return std::nullopt;
  }
  return std::filesystem::path(dir);
}

}  // namespace dsd_torch_test
