#pragma once
/// A fresh directory per test, removed afterwards.

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>

namespace gw::test {

/// Creates /tmp/<prefix>-XXXXXX (mkdtemp) and removes it with everything inside at
/// destruction, unless the environment has GW_KEEP_TEST_DIRS=1: then the path is printed to
/// stderr and the directory kept for post-mortem (logs, received files). Stop child
/// processes writing into it before it is destroyed (declare the TempDir first).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "gw-test") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { remove(); }

  const std::filesystem::path& path() const { return path_; }
  /// path() / name, created as a directory if it does not exist.
  std::filesystem::path subdir(const std::string& name) const {
    std::filesystem::path dir = path_ / name;
    std::filesystem::create_directories(dir);
    return dir;
  }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  void remove() noexcept {
    if (path_.empty()) return;
    const char* keep = std::getenv("GW_KEEP_TEST_DIRS");
    if (keep != nullptr && std::string(keep) == "1") {
      std::cerr << "GW_KEEP_TEST_DIRS=1: kept " << path_ << "\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  std::filesystem::path path_;
};

}  // namespace gw::test
