// Every file of the committed malformed-input corpus (tests/corpus/, made by
// scripts/make_corpus.py) gives its documented error; the valid ones load.
#include <doctest/doctest.h>

#include <common/fashion_mnist.hpp>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/recipe.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {
std::vector<std::pair<std::string, std::string>> manifest(const std::string& sub) {
  std::ifstream in(std::string(DSD_CORPUS_DIR) + "/" + sub + "/expected.txt");
  REQUIRE(in.good());
  std::vector<std::pair<std::string, std::string>> cases;
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    cases.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return cases;
}

template <class F>
std::string outcome(F&& f) {
  try {
    f();
  } catch (const dsd::error& e) {
    return e.what();
  }
  return "OK";
}
}  // namespace

TEST_CASE("checkpoint corpus: each malformed file fails with its documented error") {
  const auto cases = manifest("safetensors");
  CHECK(cases.size() >= 20);
  for (const auto& entry : cases) {
    // Not a structured binding: clang 14 cannot capture one (in CAPTURE's lambda).
    const std::string& file = entry.first;
    const std::string& expect = entry.second;
    CAPTURE(file);
    std::vector<float> w(12, 0.0f);
    dsd::Masked fc(dsd::raw_tensor<float>{w.data(), 12, {3, 4}}, "fc");
    const std::string got = outcome([&] {
      dsd::io::load_checkpoint(std::string(DSD_CORPUS_DIR) + "/safetensors/" + file,
                               dsd::layers(fc));
    });
    CHECK_MESSAGE(got.find(expect) != std::string::npos, got);
    if (expect == "OK") {
      CHECK(w[5] == 5.0f);
      CHECK(fc.mask().count() == 12);
    } else {
      CHECK(w == std::vector<float>(12, 0.0f));  // a failed load changes nothing
    }
  }
}

TEST_CASE("IDX corpus: each malformed data file fails with a clear error naming it") {
  const auto cases = manifest("idx");
  CHECK(cases.size() >= 8);
  for (const auto& entry : cases) {
    // Not a structured binding: clang 14 cannot capture one (in CAPTURE's lambda).
    const std::string& file = entry.first;
    const std::string& expect = entry.second;
    CAPTURE(file);
    const std::string path = std::string(DSD_CORPUS_DIR) + "/idx/" + file;
    std::size_t count = 0;
    const std::string got =
        outcome([&] { fashion::detail::read_idx(path, 0x803, 16, fashion::Split::pixels, count); });
    CHECK_MESSAGE(got.find(expect) != std::string::npos, got);
    if (expect != "OK") CHECK(got.find(file) != std::string::npos);
  }
}

TEST_CASE("recipe corpus: each malformed recipe fails naming its field and value") {
  const auto cases = manifest("recipes");
  CHECK(cases.size() >= 20);
  const std::vector<std::string> names = {"conv1", "fc1", "fc2"};
  for (const auto& entry : cases) {
    const std::string& file = entry.first;
    const std::string& expect = entry.second;
    CAPTURE(file);
    const std::string path = std::string(DSD_CORPUS_DIR) + "/recipes/" + file;
    const std::string got = outcome([&] { (void)dsd::io::read_recipe(path).plan(names); });
    CHECK_MESSAGE(got.find(expect) != std::string::npos, got);
    if (expect != "OK") CHECK_MESSAGE(got.find(path) != std::string::npos, got);  // names the file
  }
}
