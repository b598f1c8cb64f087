// The HTML report and its pieces: round axis ticks (1-2-5 steps, powers of ten), XML escaping,
// a real D -> S -> D run recorded and reported, seeds merged into mean ± sd, run records that
// read back into the same report, and bad record files refused by name.
#include <doctest/doctest.h>

#include <cmath>
#include <dsd/dsd.hpp>
#include <dsd/io/detail/svg.hpp>
#include <dsd/io/report.hpp>
#include <dsd/io/run_records.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

std::vector<std::string> labels(const dsd::io::detail::Axis& a) {
  std::vector<std::string> out;
  for (const double t : a.ticks) out.push_back(a.tick_label(t));
  return out;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// A real D(1) S(2) R(1) run of one 1000-weight layer, recorded.
dsd::io::RunRecord recorded_run(std::string name, double accuracy, std::uint64_t seed = 3) {
  std::vector<float> w = dsd_test::uniform<float>(1000, seed, 1.0);
  dsd::Masked layer(w, "fc<1>");
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  double loss = 1.0;
  cb.train_epoch = [&](const dsd::EpochContext&) {
    for (auto& x : w) x *= 1.01f;
    layer.enforce();
    return loss *= 0.5;
  };
  cb.evaluate = [&] { return accuracy; };
  dsd::io::RunRecorder recorder({.bins = 20});
  auto all = dsd::layers(layer);
  recorder.attach(cb, all);
  const dsd::Schedule schedule{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 1, .lr = 0.1};
  (void)dsd::run(all, schedule, dsd::UniformSparsity{.sparsity = 0.5}, cb);
  dsd::io::RunRecord r = recorder.record(std::move(name), schedule.plan());
  r.metadata = {{"seed", std::to_string(seed)}, {"flags", "--epochs 1,2,1"}};
  r.results = {{"test accuracy", accuracy - 0.01}};
  return r;
}

}  // namespace

TEST_CASE("axes are ticked at round values in 1-2-5 steps") {
  using dsd::io::detail::linear_axis;
  using dsd::io::detail::log_axis;
  // The sensitivity plot's old labels were 0.6699, 0.7082, 0.7465...
  const auto a = linear_axis(0.6699, 0.7465, "accuracy");
  CHECK(a.lo == doctest::Approx(0.66));
  CHECK(a.hi == doctest::Approx(0.76));
  CHECK(labels(a) == std::vector<std::string>{"0.66", "0.68", "0.70", "0.72", "0.74", "0.76"});
  CHECK(labels(linear_axis(0.0, 1.0, "")) ==
        std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"});
  CHECK(labels(linear_axis(0.0, 1234.0, "")) == std::vector<std::string>{"0", "500", "1000", "1500"});
  CHECK(labels(linear_axis(-0.05, 0.05, "")) ==
        std::vector<std::string>{"-0.06", "-0.04", "-0.02", "0.00", "0.02", "0.04", "0.06"});
  CHECK(labels(linear_axis(0.5, 0.5, "")) ==
        std::vector<std::string>{"0.47", "0.48", "0.49", "0.50", "0.51", "0.52", "0.53"});
  CHECK(labels(linear_axis(NAN, 1.0, "")) ==
        std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"});
  const auto l = log_axis(12345.0, "count");
  CHECK(l.hi == 1e5);
  CHECK(labels(l) == std::vector<std::string>{"1", "10", "100", "1000", "1e+04", "1e+05"});
  CHECK(l.fraction(l.lo) == 0.0);
  CHECK(l.fraction(1e5) == doctest::Approx(1.0));
}

TEST_CASE("text in a report is escaped for XML") {
  using dsd::io::detail::xml_escape;
  CHECK(xml_escape(R"(<a href="x">&'</a>)") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  CHECK(xml_escape(std::string("a\x01z")) == "a\\x01z");
  CHECK(xml_escape("\xff") == "\\xff");  // not UTF-8: written as bytes
  CHECK(xml_escape("Gewichte μ") == "Gewichte μ");
}

TEST_CASE("the report of a recorded D -> S -> D run holds every section") {
  const dsd::io::RunRecord dsd_run = recorded_run("dsd", 0.75);
  REQUIRE(dsd_run.schedule.size() == 3);
  CHECK(dsd_run.schedule[1].before == "prune: the run's thresholds");
  CHECK(dsd_run.schedule[2].before == "re-dense");
  CHECK(dsd_run.schedule[1].lr == doctest::Approx(0.1));
  REQUIRE(dsd_run.phases.size() == 3);
  CHECK(dsd_run.phases[1].layers[0].sparsity == 0.5);
  // Given the run's threshold policy, the schedule names it.
  const dsd::Schedule schedule{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 1, .lr = 0.1};
  CHECK(dsd::io::schedule_rows(schedule.plan(), dsd::io::prune_text(dsd::UniformSparsity{.sparsity = 0.5}))[1].before ==
        "prune: 0.5 of each layer");
  CHECK(dsd::io::prune_text(dsd::SensitivitySparsity{.max_drop = 0.02}) ==
        "prune: per layer by sensitivity (accuracy drop at most 0.02)");
  dsd::Plan global = schedule.plan();
  global.phases[1].thresholds = dsd::GlobalSparsity{.sparsity = 0.75};
  CHECK(dsd::io::schedule_rows(global)[1].before == "prune: 0.75 of all layers together");

  const std::string html = dsd::io::report_html(std::vector{dsd_run}, {.title = "D -> S -> D"});
  for (const char* id : {"runs", "schedule", "curves", "histograms", "sparsity", "metadata"})
    CHECK(html.find(std::string("<section id=\"") + id + "\">") != std::string::npos);
  CHECK(html.find("<section id=\"sensitivity\">") == std::string::npos);  // none recorded
  CHECK(html.find("<script") == std::string::npos);
  CHECK(occurrences(html, "http://") == occurrences(html, "xmlns=\"http://www.w3.org/2000/svg\""));
  // 3 curves, 6 boundaries of one layer.
  CHECK(occurrences(html, "<svg ") == 3 + 6);
  for (const char* b : {"1: D1 start", "1: D1 end", "2: S1 start", "2: S1 end", "3: R1 start", "3: R1 end"})
    CHECK(html.find(b) != std::string::npos);
  CHECK(html.find("pruned 500 (50.0%)") != std::string::npos);  // S1 start and end
  CHECK(occurrences(html, "pruned 500 (50.0%)") == 2);
  CHECK(html.find("<th>fc&lt;1&gt;</th>") != std::string::npos);  // the layer's name, escaped
  CHECK(html.find("fc<1>") == std::string::npos);
  CHECK(html.find("<td>0.5000 (") != std::string::npos);  // the sparsity after the prune
  CHECK(html.find("<td>--epochs 1,2,1</td>") != std::string::npos);
  CHECK(html.find("<td>0.7400</td>") != std::string::npos);  // its test accuracy
  CHECK(html.find("nan") == std::string::npos);
}

TEST_CASE("runs of one name are seeds: mean ± sd; other names are overlaid") {
  const std::vector runs{recorded_run("dsd", 0.7, 1), recorded_run("dsd", 0.8, 2),
                         recorded_run("dense", 0.6, 1)};
  const std::string html = dsd::io::report_html(runs);
  CHECK(html.find("dsd (mean ± sd, 2 seeds)") != std::string::npos);
  CHECK(html.find("<td>0.7500 ± 0.0707</td>") != std::string::npos);  // sd of 0.7 and 0.8
  CHECK(html.find("<td>0.6000</td>") != std::string::npos);
  CHECK(occurrences(html, "<polygon") == 3);  // one band per chart, for dsd only
  CHECK(html.find("<th>run 2</th>") != std::string::npos);
  auto uneven = runs;
  uneven[1].epochs.pop_back();
  CHECK_THROWS_WITH_AS(
      (void)dsd::io::report_html(uneven),
      doctest::Contains("the runs called \"dsd\" have 4 and 3 epochs"), dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::io::report_html(std::vector<dsd::io::RunRecord>{}),
                       doctest::Contains("no runs"), dsd::error);
}

TEST_CASE("run records read back into the same report, NaN and sensitivity included") {
  std::vector runs{recorded_run("dsd", 0.75), recorded_run("dense", 0.7)};
  runs[0].epochs[1].loss = NAN;  // a diverged epoch
  runs[0].results.emplace_back("infinite", INFINITY);
  runs[0].sensitivity = dsd::SensitivityTable{0.9, {{"fc<1>", 0.5, 0.89}, {"fc<1>", 0.75, 0.7}}};
  runs[0].max_drop = 0.02;
  const std::string json = dsd::io::run_records_json(runs);
  const auto back = dsd::io::parse_run_records(json);
  REQUIRE(back.size() == 2);
  CHECK(std::isnan(back[0].epochs[1].loss));
  CHECK(back[0].results.back().second == INFINITY);
  CHECK(dsd::io::run_records_json(back) == json);
  const std::string html = dsd::io::report_html(runs);
  CHECK(dsd::io::report_html(back) == html);
  CHECK(html.find("<section id=\"sensitivity\">") != std::string::npos);
  CHECK(html.find("Sensitivity: accuracy with one layer pruned (max drop 0.02)") != std::string::npos);

  dsd_test::TempDir dir("dsd_test_report");
  dsd::io::write_run_records(dir.path / "runs.json", runs);
  CHECK(dsd::io::report_html(dsd::io::read_run_records(dir.path / "runs.json")) == html);
  CHECK_THROWS_WITH_AS((void)dsd::io::read_run_records(dir.path / "missing.json"),
                       doctest::Contains("cannot read run records"), dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::io::read_run_records(dir.path),
                       doctest::Contains("cannot read run records"), dsd::error);
}

TEST_CASE("bad run records are refused by what is wrong, never read as something else") {
  const std::string good = dsd::io::run_records_json(std::vector{recorded_run("dsd", 0.75)});
  const auto bad = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  const auto refused = [](const std::string& text, const std::string& says) {
    try {
      (void)dsd::io::parse_run_records(text, "r.json");
      FAIL("accepted: ", text.substr(0, 80));
    } catch (const dsd::error& e) {
      CHECK(e.code() == dsd::errc::io);
      CHECK_MESSAGE(std::string(e.what()).find(says) != std::string::npos, e.what());
      CHECK(std::string(e.what()).find("\"r.json\"") != std::string::npos);
    }
  };
  refused("{", "parse");
  refused("[]", "not a dsd run records file");
  refused(bad("\"dsd_run_records\": 1", "\"dsd_run_records\": 2"), "not a dsd run records file");
  refused(bad("\"round\": 1", "\"round\": 1.5"), "expected an integer, found 1.5");
  refused(bad("\"round\": 1", "\"round\": 4294967296"), "4294967296 is out of range");
  refused(bad("\"pruned\": 0", "\"pruned\": -1"), "-1 is out of range");
  refused(bad("\"phase\": \"sparse\"", "\"phase\": \"spares\""), "unknown phase \"spares\"");
  refused(bad("\"loss\": 0.5", "\"loss\": \"half\""), "\"half\" is not a number");
  refused(bad("\"counts\": [", "\"counts\": [-3,"), "-3 is out of range");
  refused(bad("\"range\": ", "\"range\": 0, \"x\": "), "range 0");
  refused(bad("\"name\": \"dsd\",", ""), "run 1: [json.exception.out_of_range.403] key 'name' not found");
  refused(bad("\"phase\": \"sparse\"", "\"phase\": \"spares\""), "\"r.json\": run 1: unknown phase");  // one "dsd: "
  refused(bad("\"metadata\": [", "\"metadata\": null, \"x\": ["), "\"metadata\" must be an array, found null");
  refused(bad("\"boundaries\": [", "\"boundaries\": {}, \"x\": ["), "\"boundaries\" must be an array, found object");
  refused(bad("\"epochs\": 1,", "\"epochs\": -7,"), "-7 is out of range");
  refused(bad("\"phase_index\": 0", "\"phase_index\": 2147483647"), "2147483647 is out of range (0 to 1073741824)");
  refused(bad("\"pruned\": 0", "\"pruned\": 18446744073709551615"), "counts 2^62 weights or more");
  refused(bad("\"kept\": ", "\"kept\": 99999999, \"x\": "), "keeps 99999999");
  refused(bad("\"range\": ", "\"range\": 1e308, \"x\": "), "within [1e-300, 1e300]");
  refused(bad("\"metadata\": [", "\"metadata\": [[\"a\", \"b\", \"c\"], "), "must be a [name, value] pair");
  refused("{\"dsd_run_records\": 1}", "not a dsd run records file");
  refused("{\"dsd_run_records\": 1, \"runs\": {}}", "not a dsd run records file");
}

TEST_CASE("what a report cannot draw stays out of its SVG; names that are not UTF-8 still save") {
  dsd::io::RunRecord r = recorded_run("dsd", 0.75);
  r.epochs[0].loss = 1.7e308;  // huge, finite
  r.epochs[1].loss = NAN;
  r.epochs[2].accuracy = INFINITY;
  r.sensitivity = dsd::SensitivityTable{NAN, {{"fc<1>", 0.5, NAN}, {"fc<1>", NAN, 0.5}}};
  r.max_drop = 0.01;
  r.name = "run \xEF\xBF\xBE";  // U+FFFE: UTF-8, but no XML character
  const std::string html = dsd::io::report_html(std::vector{r});
  CHECK(html.find("\"nan") == std::string::npos);  // no attribute holds nan or inf
  CHECK(html.find("\"inf") == std::string::npos);
  CHECK(html.find(",nan") == std::string::npos);
  CHECK(html.find("\xEF\xBF\xBE") == std::string::npos);
  CHECK(html.find("run \\xef\\xbf\\xbe") != std::string::npos);
  r.name = "caf\xE9";  // Latin-1
  const std::string json = dsd::io::run_records_json(std::vector{r});
  const auto back = dsd::io::parse_run_records(json);
  REQUIRE(back.size() == 1);
  CHECK(back[0].name == "caf\xEF\xBF\xBD");  // U+FFFD for the byte that is not UTF-8
}
