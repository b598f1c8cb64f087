// Merges run records into one HTML report: the files the trainers write with --report-data (one
// per invocation, e.g. one per seed), read strictly; runs of one name are seeds of one
// configuration, drawn as mean ± sd. scripts/results.py --report calls it.
//   dsd_report --out report.html seed1.json seed2.json ...
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <dsd/io/report.hpp>
#include <dsd/io/run_records.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Merges the run records of dsd trainers (--report-data) into one HTML report"};
  std::string out, title = "DSD runs";
  std::vector<std::string> inputs;
  app.add_option("--out", out, "the HTML file to write")->required();
  app.add_option("--title", title, "the report's title")->capture_default_str();
  app.add_option("records", inputs, "run record files (JSON), in the order to show them")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    // The same file twice would be drawn as extra seeds of its own runs.
    std::vector<std::filesystem::path> seen;
    for (const auto& path : inputs) {
      const auto canonical = std::filesystem::weakly_canonical(path);
      DSD_REQUIRE(std::find(seen.begin(), seen.end(), canonical) == seen.end(), invalid_argument,
                  "\"", path, "\" is given twice; its runs would be drawn as seeds of themselves");
      seen.push_back(canonical);
    }
    std::vector<dsd::io::RunRecord> runs;
    for (const auto& path : inputs)
      for (auto& r : dsd::io::read_run_records(path)) runs.push_back(std::move(r));
    dsd::io::write_report(out, runs, {.title = title});
    std::cout << "report of " << runs.size() << " runs from " << inputs.size() << " files written to "
              << out << "\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
