// Numbers as text under a decimal-comma locale: every file dsd writes reads back in any locale,
// and reads the same bytes whatever the writer's locale was. ctest runs this binary with a
// de_DE.UTF-8 locale compiled by localedef into the build tree (LOCPATH); without one the
// locale cases fail rather than pass vacuously.

#include <doctest/doctest.h>

#include <unistd.h>
#include <clocale>
#include <cstdio>
#include <dsd/detail/text.hpp>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/report.hpp>
#include <dsd/io/run_records.hpp>
#include <dsd/io/sensitivity_report.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <locale>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace fs = std::filesystem;

namespace {
constexpr const char* comma_locale = "de_DE.UTF-8";

/// Switches the C and the C++ global locale to `name` for its lifetime.
struct LocaleScope {
  std::string old_c;
  std::locale old_cpp;
  explicit LocaleScope(const char* name) : old_c(std::setlocale(LC_ALL, nullptr)) {
    REQUIRE_MESSAGE(std::setlocale(LC_ALL, name) != nullptr,
                    "locale ", std::string(name), " is missing (ctest compiles it with localedef into LOCPATH)");
    old_cpp = std::locale::global(std::locale(name));
  }
  ~LocaleScope() {
    std::setlocale(LC_ALL, old_c.c_str());
    std::locale::global(old_cpp);
  }
};

std::string decimal_text_of_half() {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f", 0.5);
  return buf;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct TempDir : dsd_test::TempDir {
  TempDir() : dsd_test::TempDir("dsd_test_locale") {}
};
}  // namespace

TEST_CASE("format writes what printf writes in the C locale") {
  using dsd::detail::format;
  CHECK(format("%-9s|%5d|%6d|%10.3g|%9.4f", "dense", 1, -12, 0.001234, 0.5) ==
        "dense    |    1|   -12|   0.00123|   0.5000");
  CHECK(format("%zu weights, %-10.6g|%%|%.0f|%.1f|%g", std::size_t{266200}, 1.5e-7, 640.0, 60.0,
               0.02) == "266200 weights, 1.5e-07   |%|640|60.0|0.02");
  CHECK(format("%08.3f|%+d|%-4d|%s", -3.14159, 7, 3, std::string("x")) == "-003.142|+7|3   |x");
  CHECK(format("%.4f %g", 1.0 / 0.0, 0.0 / 0.0) == "inf nan");
  CHECK(format("%d %s", "text", 5) == "<not an integer> <not a string>");  // never UB
  CHECK(format("%d %d", 1) == "1 <missing>");  // fewer arguments than conversions
  // the corners where a first version disagreed with printf
  CHECK(format("[%a|%.3a|%10a]", 0.5, 0.5, 0.5) == "[0x1p-1|0x1.000p-1|    0x1p-1]");
  CHECK(format("[%010.3f|%010.3f|%+f|%+g]", 1.0 / 0.0, -1.0 / 0.0, -0.0, -0.0) ==
        "[       inf|      -inf|-0.000000|-0]");
  CHECK(format("[%.3d|%5.3d|%.3zu|%05d|%-5d]", 42, -7, std::size_t{5}, -42, 3) ==
        "[042| -007|005|-0042|3    ]");
  CHECK(format("%.600f", 1.0).size() == 602);
  CHECK(format("%99999999999d", 1).size() == 4096);  // widths saturate, no overflow
  CHECK(format("%e", 12345.678) == "1.234568e+04");
}

TEST_CASE("hex and shortest text round-trip exactly") {
  using namespace dsd::detail;
  for (double v : {0.0, -0.0, 0.3, static_cast<double>(0.3f), 1e-300, 123456.789, 5e-324}) {
    double back = -1.0;
    REQUIRE(parse_double(to_hex_text(v), back));
    CHECK(back == v);
    CHECK(std::signbit(back) == std::signbit(v));
    REQUIRE(parse_double(to_text(v), back));
    CHECK(back == v);
  }
  CHECK(to_hex_text(static_cast<double>(0.3f)) == "0x1.333334p-2");
  CHECK(to_hex_text(0.0) == "0x0p+0");
  double x = 0.0;
  CHECK_FALSE(parse_double("", x));
  CHECK_FALSE(parse_double("0x1,333334p-2", x));  // what %a wrote under de_DE before
  CHECK_FALSE(parse_double("1.5 ", x));
  CHECK_FALSE(parse_double("--1", x));
  CHECK_FALSE(parse_double("0x", x));
  for (const char* bad : {"0xinf", "0xnan", "-0xinf", "0xINFINITY", "0x-1", "0x1p"})
    CHECK_FALSE(parse_double(bad, x));
  CHECK(parse_double("0x.8p1", x));
  CHECK(x == 1.0);
  CHECK(parse_double("0x1.8p+1", x));
  CHECK(x == 3.0);
}

TEST_CASE("checkpoints read the same in a decimal-comma locale as in C") {
  TempDir dir;
  std::vector<float> w{0.1f, -0.2f, 0.3f, -0.4f, 0.5f, 0.05f, -0.6f, 0.7f};
  dsd::Masked l(w, "fc1");
  dsd::prune(l, 0.5);
  const double threshold = l.threshold();
  REQUIRE(threshold > 0.0);
  const auto c_file = dir.path / "c.safetensors";
  const auto de_file = dir.path / "de.safetensors";
  dsd::io::save_checkpoint(c_file, dsd::layers(l));
  {
    LocaleScope de(comma_locale);
    REQUIRE(decimal_text_of_half() == "0,5");  // the locale is really in force
    dsd::io::save_checkpoint(de_file, dsd::layers(l));
    // a de_DE process reads an ordinary (C-locale) file
    std::vector<float> w2(w.size(), 0.0f);
    dsd::Masked l2(w2, "fc1");
    dsd::io::load_checkpoint(c_file, dsd::layers(l2));
    CHECK(l2.threshold() == threshold);
    CHECK(w2 == w);
  }
  CHECK(slurp(c_file) == slurp(de_file));  // byte-identical whatever the writer's locale
  const dsd::io::File f(de_file);
  CHECK(f.meta("dsd.layer.fc1.threshold") == dsd::detail::to_hex_text(threshold));
  std::vector<float> w3(w.size(), 0.0f);
  dsd::Masked l3(w3, "fc1");
  dsd::io::load_checkpoint(de_file, dsd::layers(l3));  // a C process reads a file written under de_DE
  CHECK(l3.threshold() == threshold);
  CHECK(l3.mask() == l.mask());
}

TEST_CASE("sensitivity files, the report and error messages use a decimal point") {
  TempDir dir;
  dsd::SensitivityTable t{0.9, {{"fc1", 0.5, 0.85}, {"fc1", 0.75, 0.6}, {"fc2", 0.5, 0.89}}};
  std::string svg_c, csv_c;
  dsd::io::write_sensitivity_svg(dir.path / "c.svg", t, 0.05);
  dsd::io::write_sensitivity_csv(dir.path / "c.csv", t);
  dsd::Report report;
  report.phases.push_back({dsd::Phase::sparse, 1, 2, 0.001, 0.5, 0.75, 1.25,
                           {dsd::LayerReport{{"fc1", 1000, 500, 0.5, 0.125}, 0}}});
  std::ostringstream report_c;
  dsd::print_report(report_c, report);
  std::string message_c;
  std::vector<float> v(1000, 1.0f);
  dsd::Masked m(v, "fc");
  try {
    dsd::prune(m, 1.5);
  } catch (const dsd::error& e) {
    message_c = e.what();
  }
  REQUIRE(message_c.find("1.5") != std::string::npos);
  {
    LocaleScope de(comma_locale);
    REQUIRE(decimal_text_of_half() == "0,5");
    dsd::io::write_sensitivity_svg(dir.path / "de.svg", t, 0.05);
    dsd::io::write_sensitivity_csv(dir.path / "de.csv", t);
    std::ostringstream report_de;
    report_de.imbue(std::locale(comma_locale));  // a user's stream in their locale
    dsd::print_report(report_de, report);
    CHECK(report_de.str() == report_c.str());
    std::string message_de;
    try {
      dsd::prune(m, 1.5);
    } catch (const dsd::error& e) {
      message_de = e.what();
    }
    CHECK(message_de.find("1.5") != std::string::npos);
    CHECK(message_de.find("1,5") == std::string::npos);
  }
  const std::string svg = slurp(dir.path / "de.svg");
  CHECK(svg == slurp(dir.path / "c.svg"));
  CHECK(slurp(dir.path / "de.csv") == slurp(dir.path / "c.csv"));
  CHECK(slurp(dir.path / "c.csv").find("fc1,0.5,0.85,") != std::string::npos);
  // no attribute holds a decimal comma: x1="60.0", never x1="60,0"
  CHECK_FALSE(std::regex_search(svg, std::regex("=\"[-0-9]+,[0-9]+\"")));
  CHECK(svg.find("x1=\"60.0\"") != std::string::npos);
  CHECK(report_c.str().find("0.5000") != std::string::npos);
}

TEST_CASE("the HTML report and run records are the same bytes under a decimal-comma locale") {
  // A recorded D -> S run of one layer: every kind of number the report and the records write
  // (rates, losses, accuracies, histogram ranges, thresholds, seconds).
  std::vector<float> w(400);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.001f * static_cast<float>(i) - 0.2f;
  dsd::Masked layer(w, "fc1");
  auto all = dsd::layers(layer);
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  double loss = 2.5;
  cb.train_epoch = [&](const dsd::EpochContext&) { return loss *= 0.75; };
  cb.evaluate = [] { return 0.8125; };
  dsd::io::RunRecorder recorder({.bins = 16});
  recorder.attach(cb, all);
  const dsd::Schedule schedule{.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 1, .lr = 0.05};
  (void)dsd::run(all, schedule, dsd::UniformSparsity{.sparsity = 0.25}, cb);
  dsd::io::RunRecord r = recorder.record("dsd", schedule.plan());
  for (auto& e : r.epochs) e.seconds = 1.5;  // the clock's figures differ between two runs
  r.results = {{"test accuracy", 0.8125}};
  r.sensitivity = dsd::SensitivityTable{0.9, {{"fc1", 0.5, 0.85}, {"fc1", 0.75, 0.6}}};
  r.max_drop = 0.05;
  const std::vector<dsd::io::RunRecord> runs{r};
  const std::string html_c = dsd::io::report_html(runs);
  const std::string json_c = dsd::io::run_records_json(runs);
  std::string html_de, json_de, html_back_de;
  {
    LocaleScope de(comma_locale);
    REQUIRE(decimal_text_of_half() == "0,5");
    html_de = dsd::io::report_html(runs);
    json_de = dsd::io::run_records_json(runs);
    html_back_de = dsd::io::report_html(dsd::io::parse_run_records(json_c, "c.json"));
  }
  CHECK(html_de == html_c);
  CHECK(json_de == json_c);
  CHECK(html_back_de == html_c);  // records written in C read back under de_DE
  CHECK(html_c.find(">0.05<") != std::string::npos);  // the phase's rate, with a point
  CHECK_FALSE(std::regex_search(html_c, std::regex("=\"[-0-9]+,[0-9]+\"")));
  CHECK(json_c.find("0.8125") != std::string::npos);
}
