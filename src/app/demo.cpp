#include "app/demo.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <string>
#include <string_view>

#include "app/admin_index.h"
#include "app/encryption.h"
#include "app/pki_commands.h"
#include "config/config.h"
#include "crypto/password.h"
#include "crypto/token.h"
#include "index/index.h"

namespace gw::app {

namespace fs = std::filesystem;

namespace {

/// A random master key (32 bytes, base64, as `openssl rand -base64 32` makes), owner-read-only;
/// kept when it exists (the demo's data was encrypted with it).
core::Status make_demo_key(const fs::path& path) {
  if (fs::exists(path)) return core::ok_status();
  std::array<unsigned char, 32> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return core::make_error(core::ErrorCode::kInternal, "no randomness for the demo key");
  }
  std::array<unsigned char, 64> text{};
  const int n = EVP_EncodeBlock(text.data(), raw.data(), static_cast<int>(raw.size()));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
  if (fd < 0) return core::make_error(core::ErrorCode::kIo, "cannot create " + path.string());
  std::string line(reinterpret_cast<const char*>(text.data()), static_cast<std::size_t>(n));
  line += '\n';
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  OPENSSL_cleanse(raw.data(), raw.size());
  OPENSSL_cleanse(line.data(), line.size());
  if (!written || !synced) {
    return core::make_error(core::ErrorCode::kIo, "cannot write " + path.string());
  }
  return core::ok_status();
}

/// The first line of every config the demo has written (runs before the marker existed left
/// this, a config.yaml, data/, pki/ and db-encryption.key).
constexpr std::string_view kConfigHeader = "# dicom-gw demo configuration";

bool has_demo_config(const fs::path& dir) {
  std::ifstream in(dir / "config.yaml");
  std::string first;
  std::getline(in, first);
  return first.rfind(kConfigHeader, 0) == 0;
}

/// May the demo write into `dir` (an existing directory)? Yes when it is empty or the demo made
/// it (the marker, or a demo config from a run before the marker); never over anything else: the
/// demo rewrites config.yaml, and `--dir /etc/dicom-gw` must not replace a production config.
core::Status check_existing_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            dir.string() + " exists and is not a directory");
  }
  if (fs::exists(dir / kDemoMarker, ec) || has_demo_config(dir)) return core::ok_status();
  const bool empty = fs::is_empty(dir, ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kIo,
                            "cannot read " + dir.string() + ": " + ec.message());
  }
  if (empty) return core::ok_status();
  return core::make_error(core::ErrorCode::kInvalidArgument,
                          "refusing to use " + dir.string() +
                              ": it is not empty and was not made by `dicom-gw demo` (no " +
                              std::string(kDemoMarker) +
                              " file); the demo writes config.yaml there. Choose a new or an "
                              "empty directory");
}

core::Status write_marker(const fs::path& dir) {
  const fs::path path = dir / kDemoMarker;
  std::error_code ec;
  if (fs::exists(path, ec)) return core::ok_status();
  std::ofstream out(path, std::ios::trunc);
  out << "made by `dicom-gw demo`, which may rewrite config.yaml in this directory\n";
  out.close();
  if (!out) return core::make_error(core::ErrorCode::kIo, "cannot write " + path.string());
  return core::ok_status();
}

/// `p` as one shell word: as is when it has only characters a shell leaves alone, else in
/// single quotes.
std::string shell_word(const fs::path& p) {
  const std::string s = p.string();
  constexpr std::string_view kPlain =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-";
  if (!s.empty() && s.find_first_not_of(kPlain) == std::string::npos) return s;
  std::string quoted = "'";
  for (const char c : s) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

/// This program, as a shell word ("dicom-gw" when /proc/self/exe cannot be read).
std::string self_binary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("dicom-gw") : shell_word(self);
}

std::string absolute_word(const fs::path& p) {
  std::error_code ec;
  const fs::path abs = fs::absolute(p, ec);
  return shell_word(ec ? p : abs.lexically_normal());
}

}  // namespace

std::string demo_instructions(const DemoArgs& args, const fs::path& config_path) {
  const std::string bin = self_binary();
  const std::string dir = absolute_word(args.dir);
  const std::string pki = absolute_word(args.dir / "pki");
  const std::string client_cert = absolute_word(args.dir / "pki" / "client.pem");
  const std::string client_key = absolute_word(args.dir / "pki" / "client.key");
  const std::string ca = absolute_word(args.dir / "pki" / "ca" / "ca.pem");
  const std::string tls_flags =
      fmt::format("--tls --cert {} --key {} --ca {}", client_cert, client_key, ca);
  std::string out;
  out += fmt::format("dicom-gw demo in {}\n", dir);
  out += fmt::format("  config:  {}\n", absolute_word(config_path));
  out += fmt::format("  PKI:     {} (CA, server and client certificates)\n", pki);
  out += fmt::format("  DICOM:   127.0.0.1:{}  (AE title DICOM_GW)\n", args.port);
  out += fmt::format("  DICOM TLS: 127.0.0.1:{}  (mutual TLS: client certificate {})\n",
                     args.tls_port, client_cert);
  out += "Try:\n";
  out += fmt::format("  echoscu -aec DICOM_GW 127.0.0.1 {}\n", args.port);
  out += fmt::format("  storescu -aec DICOM_GW 127.0.0.1 {} FILE.dcm\n", args.port);
  out += fmt::format("  {} echo --aec DICOM_GW 127.0.0.1 {}\n", bin, args.port);
  out += fmt::format("  {} send --aec DICOM_GW 127.0.0.1 {} DIR\n", bin, args.port);
  out += fmt::format("  echoscu -aec DICOM_GW 127.0.0.1 {} +tls {} {} +cf {}\n", args.tls_port,
                     client_key, client_cert, ca);
  out += fmt::format("  {} echo --aec DICOM_GW {} 127.0.0.1 {}\n", bin, tls_flags, args.tls_port);
  out +=
      fmt::format("  {} send --aec DICOM_GW {} 127.0.0.1 {} DIR\n", bin, tls_flags, args.tls_port);
  return out;
}

std::string demo_api_instructions(const DemoArgs& args, const fs::path& config_path,
                                  const std::optional<std::string>& token) {
  std::string out = fmt::format("  REST API: http://127.0.0.1:{}/api/v1\n", args.http_port);
  if (token) {
    out += fmt::format(
        "  admin API token (shown once, valid 30 days): {}\n"
        "  curl -H 'Authorization: Bearer {}' http://127.0.0.1:{}/api/v1/status\n",
        *token, *token, args.http_port);
  } else {
    out += fmt::format("  a new API token: {} user token --config {} --name admin\n", self_binary(),
                       absolute_word(config_path));
  }
  return out;
}

core::Result<fs::path> prepare_demo(const DemoArgs& args) {
  std::error_code ec;
  const bool existed = fs::exists(fs::symlink_status(args.dir, ec));
  if (existed) GW_RETURN_IF_ERROR(check_existing_dir(args.dir));
  fs::create_directories(args.dir / "data", ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kIo,
                            "cannot create " + args.dir.string() + ": " + ec.message());
  }
  // Only a directory the demo made: an existing one keeps its mode (`--dir /tmp` keeps the
  // sticky bit).
  if (!existed) ::chmod(args.dir.c_str(), 0750);
  GW_RETURN_IF_ERROR(write_marker(args.dir));
  GW_RETURN_IF_ERROR(make_demo_pki(args.dir / "pki"));
  GW_RETURN_IF_ERROR(make_demo_key(args.dir / "db-encryption.key"));
  // The config is generated from the arguments every time (so the printed ports are the served
  // ones); the data directory and the PKI are kept across runs.
  const fs::path config = args.dir / "config.yaml";
  std::ofstream out(config, std::ios::trunc);
  out << fmt::format(R"(# dicom-gw demo configuration (made by `dicom-gw demo`; see docs/config.md)
ae_title: DICOM_GW
data_dir: data
listeners:
  - {{name: plain, bind: 127.0.0.1, port: {}, tls: false}}
  - {{name: secure, bind: 127.0.0.1, port: {}, tls: true}}
# The demo PKI (pki/): a root CA, a server certificate for localhost/127.0.0.1 and a client
# certificate (pki/client.pem) that the secure listener accepts (mutual TLS, BCP 195).
tls:
  enabled: true
  cert_file: pki/server.pem
  key_file: pki/server.key
  ca_file: pki/ca/ca.pem
  peer_certificate: required
  profile: bcp195-rfc8996
storage:
  fsync: true
  duplicates: keep-first
  # Below this much free space (MiB) new instances are refused (0xA700), so the index and the
  # queue keep room. Small for a demo on a small disk; a production default is 1024.
  min_free_mb: 128
# Patient data in the index is encrypted (ADR 010) with this key (0400; keep a copy elsewhere:
# without it the data cannot be read). docs/encryption-at-rest.md explains rotation.
database:
  encryption_key_file: db-encryption.key
# The REST API (bearer tokens; the demo's admin token is printed once, at the first run).
http:
  enabled: true
  bind: 127.0.0.1
  port: {}
)",
                     args.port, args.tls_port, args.http_port);
  out.close();
  if (!out) return core::make_error(core::ErrorCode::kIo, "cannot write " + config.string());
  return config;
}

core::Result<std::optional<std::string>> bootstrap_demo_admin(const fs::path& config_path) {
  GW_ASSIGN_OR_RETURN(auto config, config::load_config(config_path));
  GW_ASSIGN_OR_RETURN(auto index, index::open_index(index_options(config)));
  GW_RETURN_IF_ERROR(load_keys(config, *index));
  GW_ASSIGN_OR_RETURN(auto users, index->count_users());
  if (users > 0) return std::optional<std::string>();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  GW_ASSIGN_OR_RETURN(auto password, crypto::new_api_token());  // 256 random bits, discarded
  index::User admin;
  admin.name = "admin";
  admin.role = index::Role::kAdmin;
  GW_ASSIGN_OR_RETURN(admin.password_hash, crypto::hash_password(password));
  admin.created_at_ms = admin.updated_at_ms = now;
  index::AuditEvent created;
  created.at_ms = now;
  created.actor = "cli";
  created.action = "user.create";
  created.target = "user:admin";
  created.details = R"({"by":"dicom-gw demo","role":"admin"})";
  GW_ASSIGN_OR_RETURN(admin.id, index->create_user(admin, &created));
  GW_ASSIGN_OR_RETURN(auto token, crypto::new_api_token());
  index::ApiToken row;
  row.user_id = admin.id;
  row.token_hash = crypto::token_hash(token);
  row.description = "created by dicom-gw demo";
  row.created_at_ms = now;
  row.expires_at_ms = now + std::int64_t{30} * 24 * 3600 * 1000;
  index::AuditEvent issued;
  issued.at_ms = now;
  issued.actor = "cli";
  issued.action = "token.create";
  issued.details = R"({"user":"admin","by":"dicom-gw demo"})";
  if (auto id = index->create_token(row, &issued); !id.ok()) return id.error();
  return std::optional<std::string>(std::move(token));
}

}  // namespace gw::app
