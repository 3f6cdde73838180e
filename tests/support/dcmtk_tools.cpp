#include "support/dcmtk_tools.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include "support/net.h"
#include "support/poll.h"
#include "support/temp_dir.h"

namespace gw::test {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

/// One line of `dcmdump +L` with the encoding details removed (see dcmdump_equal); nullopt
/// for lines that carry no value at all.
std::optional<std::string> normalize_dump_line(const std::string& line) {
  const std::size_t start = line.find_first_not_of(' ');
  if (start == std::string::npos || line[start] == '#') return std::nullopt;
  const std::string_view tag = std::string_view(line).substr(start, 11);
  if (tag.size() == 11 && tag[0] == '(' && tag.substr(6, 4) == "0000") return std::nullopt;
  if (tag == "(fffe,e00d)" || tag == "(fffe,e0dd)" || tag == "(fffc,fffc)") return std::nullopt;

  std::string out = line;
  for (const char* form : {"explicit length ", "undefined length "}) {
    const std::size_t at = out.find(form);
    if (at != std::string::npos && at < start + 40) {
      // "(Sequence with explicit length #=1)" → "(Sequence #=1)"
      const std::size_t with = out.rfind(" with ", at);
      if (with != std::string::npos) out.erase(with, at + std::strlen(form) - with - 1);
    }
  }
  // "value        #  56, 1 Name" → "value # 1 Name"
  const std::size_t hash = out.rfind('#');
  if (hash == std::string::npos) return out;
  const std::size_t comma = out.find(',', hash);
  std::string head = out.substr(0, hash);
  head.erase(head.find_last_not_of(' ') + 1);
  std::string tail = comma == std::string::npos ? out.substr(hash + 1) : out.substr(comma + 1);
  tail.erase(0, tail.find_first_not_of(' '));
  return head + " # " + tail;
}

/// Streams the normalized data set lines of a dcmdump output file.
class NormalizedDump {
 public:
  explicit NormalizedDump(const std::filesystem::path& path) : in_(path) {}

  std::optional<std::string> next() {
    std::string line;
    while (std::getline(in_, line)) {
      if (!in_data_set_) {
        in_data_set_ = line.rfind("# Dicom-Data-Set", 0) == 0;
        continue;
      }
      if (auto normalized = normalize_dump_line(line)) return normalized;
    }
    return std::nullopt;
  }
  bool saw_data_set() const { return in_data_set_; }

 private:
  std::ifstream in_;
  bool in_data_set_ = false;
};

std::string shorten(const std::string& s) {
  constexpr std::size_t kMax = 300;
  return s.size() <= kMax ? s : s.substr(0, kMax) + "... (" + std::to_string(s.size()) + " chars)";
}

}  // namespace

std::vector<std::filesystem::path> StoreScp::received_files() const {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::set<std::string> StoreScp::received_uids(std::size_t* files) const {
  const auto received = received_files();
  if (files != nullptr) *files = received.size();
  return sop_instance_uids_of(received);
}

StoreScp start_storescp(std::uint16_t port, const std::filesystem::path& out_dir,
                        const std::vector<std::string>& extra_args,
                        const StoreScpOptions& options) {
  const std::filesystem::path dir = std::filesystem::absolute(out_dir);
  std::filesystem::create_directories(dir);
  const std::filesystem::path log_dir =
      options.log_dir.empty() ? dir.parent_path() / "logs" : options.log_dir;
  const int attempts = port == 0 ? 5 : 1;
  std::string failure;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const std::uint16_t p = port != 0 ? port : free_tcp_port();
    ProcessOptions po;
    po.argv = {"storescp"};
    if (options.fork) po.argv.emplace_back("--fork");
    for (const char* a : {"-od", dir.c_str(), "+B", "+xa", "-dhl", "-aet"}) po.argv.emplace_back(a);
    po.argv.push_back(options.aet);
    po.argv.insert(po.argv.end(), extra_args.begin(), extra_args.end());
    po.argv.push_back(std::to_string(p));
    po.env = options.env;
    po.log_dir = log_dir;
    po.log_name = "storescp-" + std::to_string(p);
    Process process = Process::start(std::move(po));
    // Ready when the port accepts; a storescp that lost the port race exits at once.
    wait_until([&] { return !process.running() || port_accepts(p); }, options.start_timeout,
               std::chrono::milliseconds(10));
    if (process.running() && port_accepts(p)) return StoreScp{std::move(process), p, dir};
    failure = process.describe() + ": " + process.read_stderr();
    process.kill9();
  }
  throw std::runtime_error("storescp did not start: " + failure);
}

CommandResult run_echoscu(const std::string& host, std::uint16_t port, const std::string& aec,
                          const std::vector<std::string>& extra_args,
                          std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {"echoscu", "-aec", aec, "-to", "10", "-ta", "10", "-td", "10"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back(host);
  argv.push_back(std::to_string(port));
  return run_command(argv, {}, timeout);
}

std::string storescu_proposal_flag(const std::string& ts) {
  static const std::map<std::string, std::string> kFlags = {
      {"1.2.840.10008.1.2", "-xi"},       {"1.2.840.10008.1.2.1", "-xe"},
      {"1.2.840.10008.1.2.2", "-xb"},     {"1.2.840.10008.1.2.1.99", "-xd"},
      {"1.2.840.10008.1.2.4.50", "-xy"},  {"1.2.840.10008.1.2.4.51", "-xx"},
      {"1.2.840.10008.1.2.4.70", "-xs"},  {"1.2.840.10008.1.2.4.80", "-xt"},
      {"1.2.840.10008.1.2.4.81", "-xu"},  {"1.2.840.10008.1.2.4.90", "-xv"},
      {"1.2.840.10008.1.2.4.91", "-xw"},  {"1.2.840.10008.1.2.5", "-xr"},
      {"1.2.840.10008.1.2.4.100", "-xm"}, {"1.2.840.10008.1.2.4.101", "-xh"},
      {"1.2.840.10008.1.2.4.102", "-xn"}, {"1.2.840.10008.1.2.4.103", "-xl"},
      {"1.2.840.10008.1.2.4.104", "-x2"}, {"1.2.840.10008.1.2.4.105", "-x3"},
      {"1.2.840.10008.1.2.4.106", "-xo"}, {"1.2.840.10008.1.2.4.107", "-x4"},
      {"1.2.840.10008.1.2.4.108", "-x5"},
  };
  const auto it = kFlags.find(ts);
  return it == kFlags.end() ? std::string() : it->second;
}

CommandResult run_storescu(const std::string& host, std::uint16_t port,
                           const std::vector<std::filesystem::path>& files,
                           const std::vector<std::string>& extra_args,
                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const bool caller_proposes = std::any_of(extra_args.begin(), extra_args.end(), [](const auto& a) {
    return a.size() >= 2 && a.compare(0, 2, "-x") == 0;
  });
  // Groups of files sharing a proposal flag, in order of first appearance.
  std::vector<std::pair<std::string, std::vector<std::filesystem::path>>> groups;
  for (const auto& f : files) {
    const std::string flag = caller_proposes ? "" : storescu_proposal_flag(transfer_syntax_of(f));
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == flag; });
    if (it == groups.end()) it = groups.insert(groups.end(), {flag, {}});
    it->second.push_back(f);
  }

  CommandResult total;
  total.exit_code = 0;
  for (const auto& [flag, group] : groups) {
    std::vector<std::string> argv = {"storescu", "-R"};
    if (!flag.empty()) argv.push_back(flag);
    for (const char* a : {"-to", "10", "-ta", "30"}) argv.emplace_back(a);
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    argv.push_back(host);
    argv.push_back(std::to_string(port));
    const std::size_t before_files = argv.size();
    for (const auto& f : group) argv.push_back(f.string());

    const std::string header =
        "# " + join_argv({argv.begin(), argv.begin() + static_cast<long>(before_files)}) + " <" +
        std::to_string(group.size()) + " files>\n";
    const auto left = left_until(deadline);
    CommandResult r;
    if (left.count() > 0) {
      r = run_command(argv, {}, left);
    } else {
      r.timed_out = true;
    }
    total.out += header + r.out;
    total.err += header + r.err;
    if (r.timed_out) {
      total.timed_out = true;
      total.exit_code = -1;
      break;
    }
    if (total.exit_code == 0) total.exit_code = r.exit_code;
  }
  return total;
}

namespace {

/// A string element (0002,`element`) of a Part 10 file's meta header, trailing padding removed.
std::string meta_header_string(const std::filesystem::path& file, unsigned wanted) {
  std::ifstream in(file, std::ios::binary);
  std::vector<unsigned char> buf(64 * 1024);
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  const std::size_t n = static_cast<std::size_t>(in.gcount());
  if (n < 132 || std::memcmp(buf.data() + 128, "DICM", 4) != 0) return {};
  auto u16 = [&](std::size_t at) { return static_cast<unsigned>(buf[at] | buf[at + 1] << 8); };
  auto u32 = [&](std::size_t at) {
    return static_cast<std::size_t>(u16(at)) | static_cast<std::size_t>(u16(at + 2)) << 16;
  };
  // The meta header is always Explicit VR Little Endian.
  std::size_t pos = 132;
  while (pos + 8 <= n && u16(pos) == 0x0002) {
    const unsigned element = u16(pos + 2);
    const std::string vr(reinterpret_cast<const char*>(buf.data()) + pos + 4, 2);
    const bool long_form = vr == "OB" || vr == "OW" || vr == "OF" || vr == "SQ" || vr == "UT" ||
                           vr == "UN" || vr == "OD" || vr == "OL" || vr == "OV" || vr == "UC" ||
                           vr == "UR" || vr == "SV" || vr == "UV";
    if (long_form && pos + 12 > n) break;
    const std::size_t length = long_form ? u32(pos + 8) : u16(pos + 6);
    const std::size_t value = pos + (long_form ? 12 : 8);
    if (length > n || value + length > n) break;
    if (element == wanted) {
      std::string uid(reinterpret_cast<const char*>(buf.data()) + value, length);
      while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.pop_back();
      return uid;
    }
    pos = value + length;
  }
  return {};
}

}  // namespace

std::string transfer_syntax_of(const std::filesystem::path& file) {
  return meta_header_string(file, 0x0010);
}

std::string sop_instance_uid_of(const std::filesystem::path& file) {
  return meta_header_string(file, 0x0003);
}

std::set<std::string> sop_instance_uids_of(const std::vector<std::filesystem::path>& files) {
  std::set<std::string> uids;
  for (const auto& f : files) uids.insert(sop_instance_uid_of(f));
  return uids;
}

std::string dcmdump(const std::filesystem::path& file, const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {"dcmdump"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back(file.string());
  CommandResult r = run_command(argv, {}, 120s);
  if (!r.ok()) {
    throw std::runtime_error(join_argv(argv) + " failed (exit " + std::to_string(r.exit_code) +
                             "): " + r.err);
  }
  return std::move(r.out);
}

bool dcmdump_equal(const std::filesystem::path& a, const std::filesystem::path& b,
                   std::string* why) {
  auto explain = [&](const std::string& text) {
    if (why != nullptr) *why = text;
    return false;
  };
  TempDir tmp("gw-dcmdump");
  // Dump both at once into files: +L output of a 50 MiB image is ~125 MB of text.
  auto start_dump = [&](const std::filesystem::path& file, const char* name) {
    ProcessOptions po;
    po.argv = {"dcmdump", "+L", "-Un", file.string()};
    po.log_dir = tmp.path();
    po.log_name = name;
    return Process::start(std::move(po));
  };
  Process dump_a = start_dump(a, "a");
  Process dump_b = start_dump(b, "b");
  for (Process* p : {&dump_a, &dump_b}) {
    const auto code = p->wait_for_exit(120s);
    if (!code || *code != 0) {
      return explain(p->describe() + " failed: " + shorten(p->read_stderr()));
    }
  }
  NormalizedDump lines_a(dump_a.stdout_path());
  NormalizedDump lines_b(dump_b.stdout_path());
  for (long line = 1;; ++line) {
    auto la = lines_a.next();
    auto lb = lines_b.next();
    if (!la && !lb) break;
    if (la != lb) {
      return explain("data sets differ at value line " + std::to_string(line) + ":\n  " +
                     a.string() + ": " + shorten(la.value_or("<end>")) + "\n  " + b.string() +
                     ": " + shorten(lb.value_or("<end>")));
    }
  }
  if (!lines_a.saw_data_set() || !lines_b.saw_data_set()) {
    return explain("no \"# Dicom-Data-Set\" in the dcmdump output");
  }
  return true;
}

}  // namespace gw::test
