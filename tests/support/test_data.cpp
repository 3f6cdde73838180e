#include "support/test_data.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "support/paths.h"
#include "support/process.h"

namespace gw::test {

std::vector<std::filesystem::path> generate_dicom(const std::filesystem::path& out_dir,
                                                  const std::vector<std::string>& args,
                                                  std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {gen_dicom_binary().string(), "--out", out_dir.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = run_command(argv, {}, timeout);
  if (!r.ok()) {
    throw std::runtime_error(join_argv(argv) + " failed (exit " + std::to_string(r.exit_code) +
                             (r.timed_out ? ", timed out" : "") + "): " + r.err);
  }
  std::vector<std::pair<long, std::filesystem::path>> indexed;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir)) {
    const auto& p = entry.path();
    if (p.extension() != ".dcm") continue;
    const std::string stem = p.stem().string();
    if (stem.empty() ||
        !std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return std::isdigit(c); }))
      continue;
    indexed.emplace_back(std::stol(stem), p);
  }
  std::sort(indexed.begin(), indexed.end());
  std::vector<std::filesystem::path> files;
  for (auto& [index, path] : indexed) files.push_back(std::move(path));
  return files;
}

}  // namespace gw::test
