#include <doctest/doctest.h>
#include <iterator>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/sensitivity_report.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace fs = std::filesystem;

namespace {
struct TempDir : dsd_test::TempDir {
  TempDir() : dsd_test::TempDir("dsd_test_io") {}
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}
// A safetensors file from a header object and a data section, for malformed-input tests.
std::string make_file(const nlohmann::json& header, const std::string& data,
                      std::int64_t len_override = -1) {
  const std::string h = header.dump();
  std::uint64_t len = len_override >= 0 ? static_cast<std::uint64_t>(len_override) : h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &len, 8);
  return out + h + data;
}
std::string error_of(const fs::path& p) {
  try {
    dsd::io::File f(p);
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::io);
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("safetensors round trip, readable as plain JSON + little-endian data") {
  TempDir dir;
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 5.0f, 6.0f};
  const std::vector<std::uint8_t> b = {7, 8, 9};
  dsd::io::Writer w;
  w.add<float>("a", {2, 3}, a);
  w.add<std::uint8_t>("b", {3}, b);
  w.metadata("note", "hello");
  w.write(dir.path / "x.safetensors");
  const std::string bytes = slurp(dir.path / "x.safetensors");
  std::uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  CHECK(len % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, len));
  CHECK(header["a"]["dtype"] == "F32");
  CHECK(header["a"]["shape"] == nlohmann::json::array({2, 3}));
  CHECK(header["a"]["data_offsets"] == nlohmann::json::array({0, 24}));
  CHECK(header["__metadata__"]["note"] == "hello");
  CHECK(bytes.size() == 8 + len + 27);

  const dsd::io::File f(dir.path / "x.safetensors");
  CHECK(f.read<float>("a") == a);
  CHECK(f.read<std::uint8_t>("b") == b);
  CHECK(f.meta("note") == "hello");
  CHECK_THROWS_WITH_AS((void)f.read<double>("a"),
                       doctest::Contains("tensor \"a\" is F32, expected F64"), dsd::error);
  CHECK_THROWS_WITH_AS((void)f.info("c"), doctest::Contains("has no tensor \"c\""), dsd::error);
  CHECK(fs::directory_iterator(dir.path) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(dir.path))  // no temporaries left
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("a failed write leaves the previous file and no temporary behind") {
  TempDir dir;
  const fs::path target = dir.path / "ckpt";
  fs::create_directories(target);  // a directory where the file should go: rename must fail
  const std::vector<float> a = {1, 2};
  dsd::io::Writer w;
  w.add<float>("a", {2}, a);
  CHECK_THROWS_AS(w.write(target), std::exception);
  CHECK(fs::is_directory(target));
  for (const auto& e : fs::directory_iterator(dir.path))  // only the directory: no temporary
    CHECK(e.path() == target);
  CHECK_THROWS_WITH_AS(w.write(dir.path / "missing" / "x"), doctest::Contains("cannot create"),
                       dsd::error);
}

TEST_CASE("malformed safetensors files each get their own clear error") {
  TempDir dir;
  const fs::path p = dir.path / "bad.safetensors";
  const nlohmann::json ok = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  const std::string data(8, '\0');
  spit(p, make_file(ok, data));
  CHECK(error_of(p) == "no error");

  spit(p, std::string("\x05\x00\x00", 3));
  CHECK(error_of(p).find("too short for the 8-byte header length") != std::string::npos);
  spit(p, make_file(ok, data, 1000));
  CHECK(error_of(p).find("header length 1000 runs past the end of the file") != std::string::npos);
  spit(p, make_file(ok, data, std::int64_t{1} << 40));
  CHECK(error_of(p).find("exceeds the 100000000 byte limit") != std::string::npos);
  spit(p, make_file(ok, data).replace(9, 1, "!"));
  CHECK(error_of(p).find("header is not valid JSON") != std::string::npos);
  spit(p, make_file(nlohmann::json::array(), data));
  CHECK(error_of(p).find("header is not a JSON object") != std::string::npos);
  spit(p, make_file(ok, data.substr(0, 6)));
  CHECK(error_of(p).find("data_offsets [0, 8] outside the 6-byte data section") !=
        std::string::npos);
  spit(p, make_file(ok, data + "xx"));
  CHECK(error_of(p).find("tensors cover 8 bytes but the data section has 10") != std::string::npos);

  nlohmann::json h = ok;
  h["a"]["dtype"] = "F128";
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("unknown dtype \"F128\"") != std::string::npos);
  h = ok;
  h["a"]["shape"] = {3};
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("spans 8 bytes but its F32 shape needs 12") != std::string::npos);
  h = ok;
  h["a"]["shape"] = {-2};
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("not a non-negative integer") != std::string::npos);
  h = ok;
  h["b"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}};  // overlaps "a"
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("overlap or hole") != std::string::npos);
  h = ok;
  h["a"].erase("data_offsets");
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("needs dtype, shape and data_offsets") != std::string::npos);
  h = ok;
  h["__metadata__"] = {{"k", 3}};
  spit(p, make_file(h, data));
  CHECK(error_of(p).find("metadata \"k\" is not a string") != std::string::npos);
  CHECK(error_of(dir.path / "none").find("cannot open") != std::string::npos);
}

TEST_CASE_TEMPLATE("checkpoints restore weights, masks, optimizer state and metadata exactly", M,
                   dsd::BitMask, dsd::ByteMask) {
  TempDir dir;
  auto w1 = dsd_test::uniform<float>(300, 1);
  auto w2 = dsd_test::uniform<double>(77, 2);
  dsd::Masked<std::vector<float>, M> fc1(w1, "fc1");
  dsd::Masked<std::vector<double>, M> fc2(w2, "fc2");
  dsd::prune(dsd::layers(fc1, fc2), dsd::UniformSparsity{.sparsity = 0.6});
  dsd::Adam{.lr = 0.01}.step(fc1, std::vector<float>(300, 0.5f));
  dsd::MomentumSgd{.lr = 0.01}.step(fc2, std::vector<double>(77, 0.5));
  const auto saved1 = fc1.duplicate();
  const auto saved2 = fc2.duplicate();
  const auto v1 = w1;
  const auto v2 = w2;
  dsd::io::save_checkpoint(dir.path / "c.safetensors", dsd::layers(fc1, fc2), {{"epoch", "7"}});

  // Scramble everything, then load.
  std::fill(w1.begin(), w1.end(), 9.0f);
  std::fill(w2.begin(), w2.end(), 9.0);
  dsd::redense(dsd::layers(fc1, fc2));
  fc1.state() = {};
  const auto meta = dsd::io::load_checkpoint(dir.path / "c.safetensors", dsd::layers(fc1, fc2));
  CHECK(meta == std::map<std::string, std::string>{{"epoch", "7"}});
  CHECK(w1 == v1);
  CHECK(w2 == v2);
  CHECK(fc1.mask() == saved1.mask());
  CHECK(fc2.mask() == saved2.mask());
  CHECK(fc1.state() == saved1.state());
  CHECK(fc2.state() == saved2.state());
  CHECK(fc1.threshold() == saved1.threshold());
}

TEST_CASE("loading checks the checkpoint against the layers and changes nothing on error") {
  TempDir dir;
  const fs::path p = dir.path / "c.safetensors";
  std::vector<float> w(12, 1.0f), other(12, 2.0f), small(6, 1.0f);
  dsd::Masked fc(dsd::raw_tensor<float>{w.data(), 12, {3, 4}}, "fc");
  dsd::io::save_checkpoint(p, dsd::layers(fc));
  dsd::Masked renamed(other, "fc_other");
  CHECK_THROWS_WITH_AS(dsd::io::load_checkpoint(p, dsd::layers(renamed)),
                       doctest::Contains("has no tensor \"fc_other\""), dsd::error);
  dsd::Masked reshaped(dsd::raw_tensor<float>{other.data(), 12, {4, 3}}, "fc");
  CHECK_THROWS_WITH_AS(
      dsd::io::load_checkpoint(p, dsd::layers(reshaped)),
      doctest::Contains("tensor \"fc\" has shape [3, 4] but layer \"fc\" is [4, 3]"), dsd::error);
  std::vector<double> wd(12, 0.0);
  dsd::Masked as_double(dsd::raw_tensor<double>{wd.data(), 12, {3, 4}}, "fc");
  CHECK_THROWS_WITH_AS(dsd::io::load_checkpoint(p, dsd::layers(as_double)),
                       doctest::Contains("is F32, expected F64"), dsd::error);
  // A good layer listed before a bad one must stay untouched too.
  std::vector<float> w_ok(12, 5.0f);
  dsd::Masked ok(dsd::raw_tensor<float>{w_ok.data(), 12, {3, 4}}, "fc");
  dsd::Masked bad(small, "missing");
  CHECK_THROWS_AS(dsd::io::load_checkpoint(p, dsd::layers(ok, bad)), dsd::error);
  CHECK(w_ok == std::vector<float>(12, 5.0f));

  std::vector<float> dup(3, 1.0f);
  dsd::Masked d1(dup, "same"), d2(dup, "same");
  CHECK_THROWS_WITH_AS(dsd::io::save_checkpoint(p, dsd::layers(d1, d2)),
                       "dsd: two layers are named \"same\"", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::io::save_checkpoint(p, dsd::layers(fc), {{"dsd.x", "1"}}),
                       "dsd: metadata key \"dsd.x\" uses the reserved prefix \"dsd.\"", dsd::error);

  // Another format version, or a plain safetensors file, is refused by name.
  std::string bytes = slurp(p);
  const auto at = bytes.find("\"dsd.version\":\"1\"");
  REQUIRE(at != std::string::npos);
  bytes.replace(at, 17, "\"dsd.version\":\"9\"");
  spit(p, bytes);
  CHECK_THROWS_WITH_AS(
      dsd::io::load_checkpoint(p, dsd::layers(fc)),
      doctest::Contains("has checkpoint format version \"9\"; this build reads version 1"),
      dsd::error);
  dsd::io::Writer plain;
  plain.add<float>("fc", {3, 4}, std::span<const float>(w));
  plain.write(p);
  CHECK_THROWS_WITH_AS(dsd::io::load_checkpoint(p, dsd::layers(fc)),
                       doctest::Contains("not a dsd checkpoint"), dsd::error);
}

TEST_CASE("sensitivity reports: CSV, JSON and an SVG plot with the chosen sparsities") {
  TempDir dir;
  const dsd::SensitivityTable t{
      0.9, {{"fc1", 0.5, 0.895}, {"fc1", 0.9, 0.85}, {"fc<2>", 0.5, 0.80}, {"fc<2>", 0.9, 0.5}}};
  dsd::io::write_sensitivity_csv(dir.path / "s.csv", t);
  dsd::io::write_sensitivity_json(dir.path / "s.json", t, 0.01);
  dsd::io::write_sensitivity_svg(dir.path / "s.svg", t, 0.01);
  CHECK(slurp(dir.path / "s.csv").rfind("layer,sparsity,accuracy,drop\nfc1,0.5,0.895,", 0) == 0);
  const auto j = nlohmann::json::parse(slurp(dir.path / "s.json"));
  CHECK(j["baseline"] == 0.9);
  CHECK(j["layers"]["fc1"]["sparsity"] == nlohmann::json::array({0.5, 0.9}));
  CHECK(j["layers"]["fc1"]["chosen"] == 0.5);
  CHECK(j["layers"]["fc<2>"]["chosen"] == 0.0);
  const std::string svg = slurp(dir.path / "s.svg");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  std::size_t lines = 0;
  for (auto at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1))
    ++lines;
  CHECK(lines == 4);  // a line per layer, the baseline and the accepted drop (dashed)
  std::size_t dashed = 0;
  for (auto at = svg.find("stroke-dasharray"); at != std::string::npos; at = svg.find("stroke-dasharray", at + 1))
    ++dashed;
  CHECK(dashed == 2);
  // Round ticks: accuracy 0.5 to 0.9 in steps of 0.1 (0.7 is on the accuracy axis only).
  CHECK(svg.find(">0.7</text>") != std::string::npos);
  CHECK(svg.find(">0.8</text>") != std::string::npos);
  CHECK(svg.find("fc&lt;2&gt; (0.00)") != std::string::npos);  // escaped, chosen sparsity shown
  CHECK(svg.find("fc1 (0.50)") != std::string::npos);
  CHECK(svg.find("<circle") != std::string::npos);
}

TEST_CASE("concurrent writers of one path each write a temporary of their own") {
  TempDir dir;
  const fs::path target = dir.path / "shared.txt";
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      const std::string text(100000, static_cast<char>('a' + t));
      for (int i = 0; i < 20; ++i) dsd::io::write_atomic(target, text);
    });
  for (auto& w : writers) w.join();
  std::ifstream in(target, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), {});
  REQUIRE(got.size() == 100000);  // one writer's complete text, never a mix
  CHECK(got == std::string(100000, got[0]));
  for (const auto& e : fs::directory_iterator(dir.path)) CHECK(e.path() == target);
}

TEST_CASE("checkpoint metadata must parse exactly; names must be unique to load into") {
  TempDir dir;
  std::vector<float> w(8, 1.0f);
  dsd::Masked l(w, "fc");
  const fs::path file = dir.path / "c.safetensors";
  const auto write_with = [&](const std::string& step, const std::string& threshold) {
    const std::vector<std::uint8_t> mask = {0xff};
    dsd::io::Writer wr;
    wr.add<float>("fc", {1, 8}, w);
    wr.add<std::uint8_t>("fc.__mask__", {1}, mask);
    wr.metadata("dsd.format", "dsd-checkpoint");
    wr.metadata("dsd.version", "1");
    wr.metadata("dsd.layer.fc.step", step);
    wr.metadata("dsd.layer.fc.threshold", threshold);
    wr.write(file);
  };
  write_with("12abc", "0x0p+0");
  CHECK_THROWS_WITH_AS((void)dsd::io::load_checkpoint(file, dsd::layers(l)),
                       doctest::Contains("step of layer \"fc\" is \"12abc\", not a non-negative integer"),
                       dsd::error);
  write_with("12", "0.5junk");
  CHECK_THROWS_WITH_AS((void)dsd::io::load_checkpoint(file, dsd::layers(l)),
                       doctest::Contains("threshold of layer \"fc\" is \"0.5junk\""), dsd::error);
  write_with("12", "nan");
  CHECK_THROWS_AS((void)dsd::io::load_checkpoint(file, dsd::layers(l)), dsd::error);
  write_with("12", "0x1p-2");
  (void)dsd::io::load_checkpoint(file, dsd::layers(l));
  CHECK(l.state().step == 12);
  std::vector<float> w2(8, 2.0f);
  dsd::Masked twin(w2, "fc");
  CHECK_THROWS_WITH_AS((void)dsd::io::load_checkpoint(file, dsd::layers(l, twin)),
                       doctest::Contains("two layers are named \"fc\""), dsd::error);
  CHECK(w2 == std::vector<float>(8, 2.0f));
}

TEST_CASE("checkpoints carry the loop: position, batch and the caller's bytes") {
  TempDir dir;
  std::vector<float> w = dsd_test::uniform<float>(12, 4);
  dsd::Masked fc(w, "fc", dsd::Shape{3, 4});
  const fs::path file = dir.path / "loop.safetensors";
  const std::string rng("state\0with\0NULs and 12345", 25);
  const dsd::io::LoopState loop{{2, 3}, 17, rng};
  dsd::io::save_checkpoint(file, dsd::layers(fc), loop, {{"mode", "dsd"}});
  const auto back = dsd::io::read_loop_state(file);
  REQUIRE(back.has_value());
  CHECK(*back == loop);
  CHECK(back->user.size() == 25);
  CHECK(dsd::io::load_checkpoint(file, dsd::layers(fc)) == std::map<std::string, std::string>{{"mode", "dsd"}});
  // Without a loop state there is none to read; an empty user blob round-trips too.
  dsd::io::save_checkpoint(file, dsd::layers(fc));
  CHECK_FALSE(dsd::io::read_loop_state(file).has_value());
  dsd::io::save_checkpoint(file, dsd::layers(fc), dsd::io::LoopState{{1, 0}, 0, {}});
  CHECK(dsd::io::read_loop_state(file)->position == dsd::Position{1, 0});
  CHECK(dsd::io::read_loop_state(file)->user.empty());
  CHECK_THROWS_AS(dsd::io::save_checkpoint(file, dsd::layers(fc), dsd::io::LoopState{{-1, 0}, 0, {}}), dsd::error);
}

TEST_CASE("checkpoints are created with the process umask, not a mode of their own") {
  TempDir dir;
  std::vector<float> w{1, 2, 3, 4};
  dsd::Masked fc(w, "fc");
  for (const auto& [mask, mode] : {std::pair{0077, 0600}, std::pair{0022, 0644}, std::pair{0002, 0664}}) {
    const mode_t old = ::umask(static_cast<mode_t>(mask));
    const auto p = dir.path / ("u" + std::to_string(mask) + ".safetensors");
    dsd::io::save_checkpoint(p, dsd::layers(fc));
    dsd::io::save_checkpoint(p, dsd::layers(fc));  // replacing an existing file too
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == static_cast<mode_t>(mode));
  }
}

TEST_CASE("a name or metadata that is not UTF-8 is a dsd::error naming it, never a JSON exception") {
  TempDir dir;
  std::vector<float> w{1, 2, 3, 4};
  dsd::Masked bad(w, std::string("fc\xff"));
  CHECK_THROWS_WITH_AS(dsd::io::save_checkpoint(dir.path / "a", dsd::layers(bad)),
                       doctest::Contains("tensor name \"fc\\xff\" is not valid UTF-8"), dsd::error);
  dsd::Masked good(w, "fc");
  CHECK_THROWS_WITH_AS(dsd::io::save_checkpoint(dir.path / "b", dsd::layers(good), {{"note", "caf\xe9"}}),
                       doctest::Contains("metadata value of \"note\" (\"caf\\xe9\") is not valid UTF-8"),
                       dsd::error);
  try {
    dsd::io::save_checkpoint(dir.path / "c", dsd::layers(good), {{"k\xc0\x80", "v"}});  // overlong NUL
    FAIL("no error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::invalid_argument);
  }
  dsd::io::save_checkpoint(dir.path / "d", dsd::layers(good), {{"note", "caf\xc3\xa9 \xf0\x9f\x98\x80"}});
  CHECK(dsd::io::File(dir.path / "d").meta("note") == "caf\xc3\xa9 \xf0\x9f\x98\x80");
  CHECK_FALSE(fs::exists(dir.path / "a"));
}

TEST_CASE("saving over a directory is a dsd::error, not a filesystem exception") {
  TempDir dir;
  std::vector<float> w{1, 2, 3, 4};
  dsd::Masked fc(w, "fc");
  fs::create_directories(dir.path / "ck" / "inside");
  CHECK_THROWS_WITH_AS(dsd::io::save_checkpoint(dir.path / "ck", dsd::layers(fc)),
                       doctest::Contains("cannot replace"), dsd::error);
  std::size_t left = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) left += e.path().filename() != "ck";
  CHECK(left == 0);  // no temporary left behind
}
