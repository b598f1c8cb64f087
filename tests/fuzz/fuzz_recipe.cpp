// libFuzzer harness: any bytes given to the recipe reader, and the plan of what it accepts, must
// end in success or a dsd::error, never a crash, a sanitizer report or another exception.
#include <cstddef>
#include <cstdint>
#include <dsd/io/recipe.hpp>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto recipe =
        dsd::io::parse_recipe(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz-input");
    const std::vector<std::string> names = {"conv1", "fc1", "fc2"};
    for (const double scale : {1.0, 0.1, 3.0})
      for (const std::int64_t steps : {std::int64_t{0}, std::int64_t{7}}) try {
          (void)recipe.plan(names, scale, steps).total_units();
        } catch (const dsd::error&) {
        }
  } catch (const dsd::error&) {
  }
  return 0;
}
