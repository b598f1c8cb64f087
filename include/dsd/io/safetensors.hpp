#pragma once
/// \file
/// Reading and writing safetensors files (https://huggingface.co/docs/safetensors): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
/// then the raw little-endian data. Writing is atomic; reading is strict. Needs nlohmann/json
/// (link `dsd::io`).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "dsd/detail/text.hpp"
#include "dsd/error.hpp"
#include "dsd/io/atomic_file.hpp"

namespace dsd::io {

static_assert(std::endian::native == std::endian::little,
              "dsd: safetensors stores little-endian data; big-endian hosts are not supported");

/// Bytes per element of a safetensors dtype name, or 0 for a name dsd does not know.
inline std::size_t dtype_size(std::string_view dtype) noexcept {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

/// The safetensors dtype name of a C++ scalar type.
template <class S>
constexpr std::string_view dtype_of() noexcept {
  if constexpr (std::is_same_v<S, double>)
    return "F64";
  else if constexpr (std::is_same_v<S, float>)
    return "F32";
  else if constexpr (std::is_same_v<S, std::uint8_t>)
    return "U8";
  else if constexpr (std::is_same_v<S, std::int64_t>)
    return "I64";
  else
    static_assert(sizeof(S) == 0, "dsd: no safetensors dtype for this type");
}

/// Where one tensor lives in a file.
struct TensorInfo {
  std::string dtype;
  std::vector<std::size_t> shape;
  std::size_t begin = 0;  ///< byte offset into the data section
  std::size_t end = 0;
};

/// Collects tensors and metadata, then writes them in one atomic step.
class Writer {
 public:
  /// Adds a tensor; its bytes are copied when `write` runs, so `data` must stay valid until then.
  template <class S>
  void add(const std::string& name, std::vector<std::size_t> shape, std::span<const S> data) {
    DSD_REQUIRE(!name.empty() && name != "__metadata__", invalid_argument, "invalid tensor name \"",
                name, "\"");
    DSD_REQUIRE(dsd::detail::valid_utf8(name), invalid_argument, "tensor name \"",
                dsd::detail::printable(name), "\" is not valid UTF-8 (a safetensors header is JSON)");
    DSD_REQUIRE(!entries_.count(name), invalid_argument, "tensor \"", name, "\" added twice");
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    DSD_REQUIRE(n == data.size(), size_mismatch, "tensor \"", name, "\" has ", data.size(),
                " elements but its shape holds ", n);
    entries_[name] = {std::string(dtype_of<S>()), std::move(shape), std::as_bytes(data)};
  }
  /// A string-to-string entry of the header's `__metadata__`.
  void metadata(const std::string& key, std::string value) {
    DSD_REQUIRE(dsd::detail::valid_utf8(key), invalid_argument, "metadata key \"",
                dsd::detail::printable(key), "\" is not valid UTF-8 (a safetensors header is JSON)");
    DSD_REQUIRE(dsd::detail::valid_utf8(value), invalid_argument, "metadata value of \"", key,
                "\" (\"", dsd::detail::printable(value),
                "\") is not valid UTF-8 (a safetensors header is JSON)");
    metadata_[key] = std::move(value);
  }

  /// Writes the file atomically (see write_atomic): on any failure `path` is left as it
  /// was and no temporary remains.
  void write(const std::filesystem::path& path) const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::size_t offset = 0;
    for (const auto& [name, e] : entries_) {
      header[name] = {{"dtype", e.dtype},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes.size()}}};
      offset += e.bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
    const std::uint64_t len = text.size();
    std::vector<std::span<const std::byte>> parts = {
        std::as_bytes(std::span<const std::uint64_t>(&len, 1)),
        std::as_bytes(std::span<const char>(text))};
    for (const auto& [name, e] : entries_) parts.push_back(e.bytes);
    write_atomic(path, parts);
  }

 private:
  struct Entry {
    std::string dtype;
    std::vector<std::size_t> shape;
    std::span<const std::byte> bytes;
  };

  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// A safetensors file read into memory and validated.
class File {
 public:
  /// Largest header dsd accepts (the format's reference implementation uses the same limit).
  static constexpr std::uint64_t max_header = 100'000'000;

  /// Reads and validates `path`; throws `dsd::error` (io) naming the file and the problem.
  explicit File(const std::filesystem::path& path) : path_(path.string()) {
    std::ifstream in(path, std::ios::binary);
    DSD_REQUIRE(in.good(), io, "cannot open \"", path_, "\"");
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    parse(bytes);
  }
  /// Validates an in-memory file; `name` stands for the path in error messages.
  File(std::span<const char> bytes, std::string name) : path_(std::move(name)) { parse(bytes); }

  [[nodiscard]] const std::map<std::string, TensorInfo>& tensors() const noexcept {
    return tensors_;
  }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept {
    return metadata_;
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// The tensor `name`, checked to have dtype `S`, as typed elements (copied out, so alignment
  /// never matters).
  template <class S>
  [[nodiscard]] std::vector<S> read(const std::string& name) const {
    const TensorInfo& t = info(name);
    DSD_REQUIRE(t.dtype == dtype_of<S>(), io, "\"", path_, "\": tensor \"", name, "\" is ", t.dtype,
                ", expected ", dtype_of<S>());
    std::vector<S> out((t.end - t.begin) / sizeof(S));
    if (!out.empty()) std::memcpy(out.data(), data_.data() + t.begin, t.end - t.begin);
    return out;
  }
  /// Shape and placement of tensor `name`; throws if the file has no such tensor.
  [[nodiscard]] const TensorInfo& info(const std::string& name) const {
    const auto it = tensors_.find(name);
    DSD_REQUIRE(it != tensors_.end(), io, "\"", path_, "\" has no tensor \"", name, "\"");
    return it->second;
  }
  /// Metadata entry `key`; throws if absent.
  [[nodiscard]] const std::string& meta(const std::string& key) const {
    const auto it = metadata_.find(key);
    DSD_REQUIRE(it != metadata_.end(), io, "\"", path_, "\" has no metadata \"", key, "\"");
    return it->second;
  }

 private:
  void parse(std::span<const char> bytes) {
    DSD_REQUIRE(bytes.size() >= 8, io, "\"", path_, "\" is truncated: ", bytes.size(),
                " bytes, too short for the 8-byte header length");
    std::uint64_t len = 0;
    std::memcpy(&len, bytes.data(), 8);
    DSD_REQUIRE(len <= max_header, io, "\"", path_, "\": header length ", len, " exceeds the ",
                max_header, " byte limit");
    DSD_REQUIRE(len <= bytes.size() - 8, io, "\"", path_, "\": header length ", len,
                " runs past the end of the file (", bytes.size(), " bytes)");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(bytes.begin() + 8,
                                     bytes.begin() + 8 + static_cast<std::ptrdiff_t>(len));
    } catch (const nlohmann::json::exception& e) {
      DSD_THROW(io, "\"", path_, "\": header is not valid JSON (", e.what(), ")");
    }
    DSD_REQUIRE(header.is_object(), io, "\"", path_, "\": header is not a JSON object");
    data_.assign(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(len), bytes.end());
    for (const auto& [name, v] : header.items()) {
      if (name == "__metadata__") {
        DSD_REQUIRE(v.is_object(), io, "\"", path_, "\": __metadata__ is not an object");
        for (const auto& [k, s] : v.items()) {
          DSD_REQUIRE(s.is_string(), io, "\"", path_, "\": metadata \"", k, "\" is not a string");
          metadata_[k] = s.get<std::string>();
        }
        continue;
      }
      tensors_[name] = parse_tensor(name, v);
    }
    // Byte ranges must tile the data section exactly: no overlaps, no holes.
    std::vector<const std::pair<const std::string, TensorInfo>*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](auto a, auto b) { return a->second.begin < b->second.begin; });
    std::size_t at = 0;
    for (const auto* t : order) {
      DSD_REQUIRE(t->second.begin == at, io, "\"", path_, "\": tensor \"", t->first,
                  "\" starts at byte ", t->second.begin, " but the previous tensor ends at ", at,
                  " (overlap or hole)");
      at = t->second.end;
    }
    DSD_REQUIRE(at == data_.size(), io, "\"", path_, "\": tensors cover ", at,
                " bytes but the data section has ", data_.size(), " (truncated or trailing bytes)");
  }

  [[nodiscard]] TensorInfo parse_tensor(const std::string& name, const nlohmann::json& v) const {
    const auto bad = [&](const char* what) {
      DSD_THROW(io, "\"", path_, "\": tensor \"", name, "\" ", what);
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      bad("needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) bad("has a non-string dtype");
    TensorInfo t;
    t.dtype = v["dtype"].get<std::string>();
    const std::size_t elem = dtype_size(t.dtype);
    DSD_REQUIRE(elem != 0, io, "\"", path_, "\": tensor \"", name, "\" has unknown dtype \"",
                t.dtype, "\"");
    if (!v["shape"].is_array()) bad("has a shape that is not an array");
    std::size_t count = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad("has a shape entry that is not a non-negative integer");
      const auto dim = d.get<std::uint64_t>();
      if (dim != 0 && count > std::numeric_limits<std::size_t>::max() / dim)
        bad("has a shape too large to address");
      count *= dim;
      t.shape.push_back(dim);
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      bad("needs data_offsets [begin, end] of non-negative integers");
    t.begin = off[0].get<std::uint64_t>();
    t.end = off[1].get<std::uint64_t>();
    DSD_REQUIRE(t.begin <= t.end && t.end <= data_.size(), io, "\"", path_, "\": tensor \"", name,
                "\" has data_offsets [", t.begin, ", ", t.end, "] outside the ", data_.size(),
                "-byte data section");
    DSD_REQUIRE(
        count <= std::numeric_limits<std::size_t>::max() / elem && t.end - t.begin == count * elem,
        io, "\"", path_, "\": tensor \"", name, "\" spans ", t.end - t.begin, " bytes but its ",
        t.dtype, " shape needs ", count * elem);
    return t;
  }

  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::vector<char> data_;
};

}  // namespace dsd::io
