// libFuzzer harness: any bytes given to the run records reader end in success or a dsd::error,
// never a crash, a sanitizer report or another exception; and what it accepts draws a report
// (the report's own refusal, seeds of unequal length, is a dsd::error too) that writes back to
// records the reader accepts again.
#include <cstddef>
#include <cstdint>
#include <dsd/io/report.hpp>
#include <dsd/io/run_records.hpp>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<dsd::io::RunRecord> runs;
  try {
    runs = dsd::io::parse_run_records(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz-input");
  } catch (const dsd::error&) {
    return 0;
  }
  try {
    (void)dsd::io::report_html(runs);
  } catch (const dsd::error&) {
  }
  // Accepted records round-trip: written again, they read again (never a refusal of our own text).
  (void)dsd::io::parse_run_records(dsd::io::run_records_json(runs), "round trip");
  return 0;
}
