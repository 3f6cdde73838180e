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

}  // namespace

core::Result<fs::path> prepare_demo(const DemoArgs& args) {
  std::error_code ec;
  fs::create_directories(args.dir / "data", ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kIo,
                            "cannot create " + args.dir.string() + ": " + ec.message());
  }
  ::chmod(args.dir.c_str(), 0750);
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
