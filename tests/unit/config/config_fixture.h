#pragma once
/// The fixture shared by the config tests: parse YAML in a temp dir, collect issues by path.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "support/temp_dir.h"

namespace gw::config {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  fs::path write(const fs::path& relative, const std::string& text) {
    const fs::path path = dir_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path;
  }
  void write_certs(const fs::path& sub = "tls") {
    for (const char* name : {"cert.pem", "key.pem", "ca.pem"}) write(sub / name, "dummy\n");
  }

  /// Parses `yaml` expecting failure; returns the issues.
  std::vector<ConfigIssue> issues_of(const std::string& yaml) {
    std::vector<ConfigIssue> issues;
    auto result = parse_config(yaml, dir_, &issues);
    EXPECT_FALSE(result.ok()) << "expected the config to be refused:\n" << yaml;
    if (!result.ok()) {
      EXPECT_EQ(result.error().code, core::ErrorCode::kConfig);
    }
    return issues;
  }
  static std::vector<std::string> paths_of(const std::vector<ConfigIssue>& issues) {
    std::vector<std::string> paths;
    for (const auto& issue : issues) paths.push_back(issue.path);
    return paths;
  }
  /// The message of the issue at `path` ("" if none).
  static std::string message_at(const std::vector<ConfigIssue>& issues, const std::string& path) {
    for (const auto& issue : issues) {
      if (issue.path == path) return issue.message;
    }
    return "";
  }

  Config parse_ok(const std::string& yaml) {
    std::vector<ConfigIssue> issues;
    auto result = parse_config(yaml, dir_, &issues);
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
    EXPECT_TRUE(issues.empty());
    return result.ok() ? std::move(result).value() : Config{};
  }

  test::TempDir tmp_{"gw-config-test"};
  const fs::path dir_ = tmp_.path();
};

inline constexpr const char* kMinimal = R"(
data_dir: /var/lib/dicom-gw
listeners:
  - {name: plain, port: 11112}
)";

}  // namespace gw::config
