// /api/v1/certs: what the DICOM TLS listeners' certificate files hold (and what is served right
// now), and replacing them by upload. An upload is checked exactly like `dicom-gw certs check`
// before anything on disk changes, so a refused upload (422, every reason) leaves the files and
// the served certificate alone; an accepted one replaces the files atomically and hot-reloads
// the listeners, and puts the old files back when the reload fails (the old certificate keeps
// being served). An uploaded ca_file replaces tls.ca_file, which is also the trust store for
// client certificates: an upload that would drop one of its CAs needs replace_trust=true.
// Key material never reaches a response, a log line or an audit row.
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

#include "certs/openssl_util.h"
#include "certs/x509_info.h"
#include "core/log.h"
#include "http/routes.h"

namespace gw::http {

namespace {

namespace fs = std::filesystem;
using core::ErrorCode;

std::shared_ptr<spdlog::logger> log() { return core::logger("http"); }

/// One upload at a time: each one reads the files it may have to restore, writes, reloads.
std::mutex upload_mu;

constexpr mode_t kCertificateMode = 0644;
constexpr mode_t kKeyMode = 0600;

core::Result<TlsCertificateFiles> configured_files(const ApiContext& ctx) {
  std::optional<TlsCertificateFiles> files;
  if (ctx.control != nullptr) files = ctx.control->tls_certificate_files();
  if (!files || files->cert_file.empty() || files->key_file.empty()) {
    return core::make_error(ErrorCode::kNotFound,
                            "TLS is not configured: no DICOM listener uses TLS (tls.cert_file)");
  }
  return *files;
}

certs::CheckReport check_files(const fs::path& cert, const fs::path& key, const fs::path& ca,
                               int expiring_days) {
  certs::CheckOptions o;
  o.cert = cert;
  o.key = key;
  o.ca = ca;
  o.purpose = certs::Purpose::kServer;
  o.expiring_days = expiring_days;
  return certs::check_certificate(o);
}

/// Why the chain did not verify: the check's chain problem, if any.
Json chain_reason(const certs::CheckReport& report) {
  for (const auto& p : report.problems) {
    if (p.rfind("chain does not verify", 0) == 0 || p.rfind("cannot verify chain", 0) == 0 ||
        p.rfind("cannot read CA file", 0) == 0) {
      return p;
    }
  }
  return nullptr;
}

/// GET /certs/info's body (and a successful upload's): the files' certificate, its checks,
/// and the serial being served now, so a pending reload shows.
Json info_json(const ApiContext& ctx, const TlsCertificateFiles& files,
               const certs::CheckReport& report) {
  Json out = {{"cert_file", files.cert_file},
              {"key_file", files.key_file},
              {"ca_file", files.ca_file.empty() ? Json(nullptr) : Json(files.ca_file)},
              {"status", std::string(certs::cert_status_name(report.status))},
              {"problems", report.problems},
              {"warnings", report.warnings}};
  std::string file_serial;
  if (!report.chain.empty()) {
    const certs::CertificateInfo& leaf = report.chain.front();
    file_serial = leaf.serial_hex;
    out["subject"] = leaf.subject;
    out["issuer"] = leaf.issuer;
    out["serial"] = leaf.serial_hex;
    out["not_before"] = leaf.not_before;
    out["not_after"] = leaf.not_after;
    out["days_until_expiry"] = leaf.days_until_expiry;
    out["sans"] = leaf.sans;
    out["key_type"] = leaf.key_type;
    out["key_bits"] = leaf.key_bits;
    out["sha256_fingerprint"] = leaf.sha256_fingerprint;
  }
  out["chain"] = {{"verified", report.chain_verified ? Json(*report.chain_verified) : Json()},
                  {"reason", chain_reason(report)}};
  Json served = nullptr;
  if (ctx.control != nullptr) {
    if (const auto snapshot = ctx.control->snapshot(); snapshot.tls_certificate) {
      const auto& c = *snapshot.tls_certificate;
      served = {{"subject", c.subject},
                {"serial", c.serial},
                {"not_after", c.not_after},
                {"days_until_expiry", c.days_until_expiry}};
    }
  }
  out["served"] = served;
  out["reload_pending"] = served.is_object() && served["serial"] != file_serial;
  return out;
}

core::Result<Response> certificate_info(const ApiContext& ctx, const Request&) {
  GW_ASSIGN_OR_RETURN(auto files, configured_files(ctx));
  const auto report =
      check_files(files.cert_file, files.key_file, files.ca_file, files.expiring_days);
  return json_response(200, info_json(ctx, files, report));
}

// ---- upload ----

/// A private directory for the uploaded parts while they are checked (the checks read files).
class StagingDir {
 public:
  static core::Result<StagingDir> create() {
    std::error_code ec;
    std::string tmpl = (fs::temp_directory_path(ec) / "dicom-gw-upload-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {  // 0700
      return core::make_error(ErrorCode::kIo, "cannot create a staging directory in " + tmpl);
    }
    return StagingDir(tmpl);
  }
  StagingDir(StagingDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  StagingDir& operator=(StagingDir&&) = delete;
  ~StagingDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit StagingDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

/// A file's bytes and mode, to put it back; the key's bytes are wiped when dropped.
struct SavedFile {
  fs::path path;
  bool existed = false;
  std::string content;
  mode_t mode = 0;

  SavedFile() = default;
  SavedFile(const SavedFile&) = delete;
  SavedFile& operator=(const SavedFile&) = delete;
  SavedFile(SavedFile&&) = default;
  SavedFile& operator=(SavedFile&&) = default;
  ~SavedFile() {
    if (!content.empty()) OPENSSL_cleanse(content.data(), content.size());
  }
};

core::Result<SavedFile> save(const fs::path& path) {
  SavedFile saved;
  saved.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return saved;  // nothing to restore but its absence
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(ErrorCode::kIo, "cannot read " + path.string());
  saved.content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  saved.existed = true;
  saved.mode = st.st_mode & 07777;
  return saved;
}

core::Status restore(const SavedFile& saved) {
  // A symlinked path (certbot's live/NAME/fullchain.pem) stays a symlink: its target is replaced.
  if (saved.existed) {
    return certs::write_file_atomic(saved.path, saved.content, saved.mode, /*overwrite=*/true);
  }
  std::error_code ec;
  if (!fs::is_symlink(saved.path, ec)) fs::remove(saved.path, ec);  // a dangling link stays
  return core::ok_status();
}

/// The subjects of the certificates of `current` (tls.ca_file, the trust anchors for client
/// certificates) that `uploaded` lacks: trust an upload would silently drop. An unreadable
/// current file trusts nothing now, and an unreadable upload is a problem of the check.
std::vector<std::string> dropped_ca_subjects(const fs::path& current, const fs::path& uploaded) {
  std::vector<std::string> dropped;
  auto trusted = certs::read_certificates(current);
  auto next = certs::read_certificates(uploaded);
  if (!trusted.ok() || !next.ok()) return dropped;
  for (const auto& cert : *trusted) {
    bool kept = false;
    for (const auto& candidate : *next) kept = kept || X509_cmp(cert.get(), candidate.get()) == 0;
    if (!kept) dropped.push_back(certs::describe_certificate(cert.get()).subject);
  }
  return dropped;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

/// 422 with every reason in `details`; nothing was changed.
Response refused(const std::vector<std::string>& problems) {
  const std::string summary =
      problems.size() == 1 ? problems.front() : std::to_string(problems.size()) + " problems";
  return error_response(422, "invalid_argument",
                        "the certificate was refused: " + summary + "; nothing was changed",
                        problems);
}

void restore_all(const std::vector<SavedFile>& saved) {
  for (const auto& s : saved) {
    if (auto st = restore(s); !st.ok()) {
      log()->error("event=certs_restore_failed file={} reason=\"{}\"", s.path.string(),
                   st.error().message);
    }
  }
}

void audit(const ApiContext& ctx, const Request& request, const std::string& outcome,
           const Json& details) {
  auto event = audit_event(ctx, request, "certs.upload", "tls", details);
  event.outcome = outcome;
  if (auto id = ctx.index.append_audit(event); !id.ok()) {
    log()->error("event=audit_failed action=certs.upload reason=\"{}\"", id.error().message);
  }
}

core::Result<Response> upload_certificate(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(auto files, configured_files(ctx));
  for (const auto& [name, part] : request.files) {
    if (name != "cert_file" && name != "key_file" && name != "ca_file" && name != "replace_trust") {
      return core::make_error(ErrorCode::kInvalidArgument,
                              "unknown multipart field `" + name +
                                  "` (expected cert_file, key_file, optionally ca_file and "
                                  "replace_trust)");
    }
  }
  for (const char* required : {"cert_file", "key_file"}) {
    if (!request.files.count(required)) {
      return core::make_error(ErrorCode::kInvalidArgument,
                              std::string("multipart/form-data field `") + required +
                                  "`: required (fields: cert_file, key_file, optional ca_file)");
    }
  }
  const bool with_ca = request.files.count("ca_file") > 0;
  bool replace_trust = false;
  if (auto it = request.files.find("replace_trust"); it != request.files.end()) {
    if (it->second.content != "true" && it->second.content != "false") {
      return core::make_error(ErrorCode::kInvalidArgument,
                              "multipart/form-data field `replace_trust`: expected true or false");
    }
    replace_trust = it->second.content == "true";
  }
  if (with_ca && files.ca_file.empty()) {
    const std::vector<std::string> problems = {
        "tls.ca_file is not configured: there is no file to install ca_file into (configure "
        "tls.ca_file first, or upload without ca_file)"};
    audit(ctx, request, "failed", {{"problems", problems}});
    return refused(problems);
  }

  // Checked from a private copy: the configured files are not touched until all is well.
  GW_ASSIGN_OR_RETURN(auto staging, StagingDir::create());
  const fs::path cert = staging.path() / "cert.pem";
  const fs::path key = staging.path() / "key.pem";
  const fs::path ca = with_ca ? staging.path() / "ca.pem" : fs::path(files.ca_file);
  GW_RETURN_IF_ERROR(
      certs::write_file_atomic(cert, request.files.at("cert_file").content, 0600, true));
  GW_RETURN_IF_ERROR(
      certs::write_file_atomic(key, request.files.at("key_file").content, 0600, true));
  if (with_ca) {
    GW_RETURN_IF_ERROR(
        certs::write_file_atomic(ca, request.files.at("ca_file").content, 0600, true));
  }
  const auto report = check_files(cert, key, ca, files.expiring_days);
  std::vector<std::string> problems = report.problems;
  // tls.ca_file is also the trust store for client certificates (mutual TLS): a public CA
  // bundle sent along with a commercial certificate must not silently replace the site PKI.
  if (with_ca && !replace_trust) {
    if (auto dropped = dropped_ca_subjects(files.ca_file, ca); !dropped.empty()) {
      problems.push_back(
          "ca_file lacks " + std::to_string(dropped.size()) +
          " CA certificate(s) of the current tls.ca_file, which also verifies client "
          "certificates (mutual TLS); installing it would stop trusting: " +
          join(dropped, "; ") +
          ". Add them to ca_file, or send replace_trust=true to replace the trust store");
    }
  }
  if (!problems.empty()) {
    audit(ctx, request, "failed", {{"problems", problems}});
    return refused(problems);
  }
  const certs::CertificateInfo& leaf = report.chain.front();
  const Json summary = {{"subject", leaf.subject},
                        {"serial", leaf.serial_hex},
                        {"not_after", leaf.not_after},
                        {"ca_file_replaced", with_ca}};

  std::lock_guard lock(upload_mu);
  // What to put back if the reload refuses the new files. Installed CA first and certificate
  // last: a reload racing with us (SIGHUP) sees a mismatch at worst, refuses it and keeps the
  // served certificate; ours then reloads the complete set.
  struct Install {
    fs::path target;
    fs::path staged;
    mode_t mode;
  };
  std::vector<Install> installs;
  if (with_ca) installs.push_back({files.ca_file, ca, kCertificateMode});
  installs.push_back({files.key_file, key, kKeyMode});
  installs.push_back({files.cert_file, cert, kCertificateMode});
  std::vector<SavedFile> saved;
  for (const auto& i : installs) {
    GW_ASSIGN_OR_RETURN(auto s, save(i.target));
    saved.push_back(std::move(s));
  }
  for (std::size_t n = 0; n < installs.size(); ++n) {
    SavedFile staged;  // wiped when dropped (the key)
    GW_ASSIGN_OR_RETURN(staged, save(installs[n].staged));
    if (auto st = certs::write_file_atomic(installs[n].target, staged.content, installs[n].mode,
                                           /*overwrite=*/true);
        !st.ok()) {
      restore_all(saved);
      audit(ctx, request, "failed", {{"reason", st.error().message}});
      return core::make_error(ErrorCode::kInternal,
                              "cannot write the certificate files: " + st.error().message);
    }
  }
  if (auto st = ctx.control->reload_tls_certificate(); !st.ok()) {
    log()->error("event=certs_upload_reload_failed reason=\"{}\" action=restored_previous_files",
                 st.error().message);
    restore_all(saved);
    // The contexts being served did not change, but a partial reload (DICOM yes, HTTPS no)
    // must not leave the two apart: reload the restored files as well.
    if (auto again = ctx.control->reload_tls_certificate(); !again.ok()) {
      log()->error("event=certs_restore_reload_failed reason=\"{}\"", again.error().message);
    }
    Json details = summary;
    details["reason"] = st.error().message;
    audit(ctx, request, "failed", details);
    return error_response(500, "internal",
                          "the new certificate was written but could not be loaded (" +
                              st.error().message +
                              "); the previous files were restored and are still served");
  }
  audit(ctx, request, "ok", summary);
  log()->info("event=certs_uploaded subject=\"{}\" serial={} not_after={} actor={}", leaf.subject,
              leaf.serial_hex, leaf.not_after, request.actor);
  const auto installed =
      check_files(files.cert_file, files.key_file, files.ca_file, files.expiring_days);
  return json_response(200, info_json(ctx, files, installed));
}

}  // namespace

std::vector<Route> certs_routes(ApiContext& ctx) {
  auto bind = [&ctx](ResultHandler fn) { return bind_handler(ctx, fn); };
  return {
      {"GET", "/api/v1/certs/info", index::Role::kViewer, bind(certificate_info),
       "The DICOM TLS certificate: files, validity, chain, status, and what is served now"},
      {"POST", "/api/v1/certs/upload", index::Role::kAdmin, bind(upload_certificate),
       "Replace the DICOM TLS certificate and key (multipart), checked, then hot-reloaded"},
  };
}

}  // namespace gw::http
