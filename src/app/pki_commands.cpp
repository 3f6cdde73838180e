#include "app/pki_commands.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/user_commands.h"

namespace gw::app {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int fail(const core::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return core::exit_code(e.code);
}

void print_info(const certs::CertificateInfo& c, const char* indent) {
  std::printf("%ssubject:     %s\n", indent, c.subject.c_str());
  std::printf("%sissuer:      %s\n", indent, c.issuer.c_str());
  std::printf("%sserial:      %s\n", indent, c.serial_hex.c_str());
  std::printf("%svalid:       %s .. %s (%lld days left)\n", indent, c.not_before.c_str(),
              c.not_after.c_str(), static_cast<long long>(c.days_until_expiry));
  std::string sans, ekus;
  for (const auto& s : c.sans) sans += (sans.empty() ? "" : ", ") + s;
  for (const auto& e : c.ekus) ekus += (ekus.empty() ? "" : ", ") + e;
  std::printf("%sSAN:         %s\n", indent, sans.empty() ? "-" : sans.c_str());
  std::printf("%sEKU:         %s\n", indent, ekus.empty() ? "-" : ekus.c_str());
  std::printf("%skey:         %s %d bits, %s\n", indent, c.key_type.c_str(), c.key_bits,
              c.signature_algorithm.c_str());
  std::printf("%sCA:          %s\n", indent, c.is_ca ? "yes" : "no");
  std::printf("%sSHA-256:     %s\n", indent, c.sha256_fingerprint.c_str());
}

}  // namespace

int run_pki_init(PkiInitArgs args) {
  auto type = certs::parse_key_type(args.key_type);
  if (!type.ok()) return fail(type.error());
  args.ca.key.type = *type;
  auto files = certs::init_ca(args.dir, args.ca);
  if (!files.ok()) return fail(files.error());
  std::printf("root CA:          %s (key %s)\n", files->root_cert.c_str(), files->root_key.c_str());
  if (!files->intermediate_cert.empty()) {
    std::printf("intermediate CA:  %s (key %s)\n", files->intermediate_cert.c_str(),
                files->intermediate_key.c_str());
    std::printf("chain:            %s\n", files->chain.c_str());
  }
  return 0;
}

int run_pki_issue(PkiIssueArgs args) {
  auto type = certs::parse_key_type(args.key_type);
  if (!type.ok()) return fail(type.error());
  auto kind = certs::parse_cert_kind(args.kind);
  if (!kind.ok()) return fail(kind.error());
  args.issue.key.type = *type;
  args.issue.kind = *kind;
  args.issue.sans = split_commas(args.sans);
  if (args.issue.out_cert.empty()) args.issue.out_cert = args.issue.common_name + ".pem";
  if (args.issue.out_key.empty()) args.issue.out_key = args.issue.common_name + ".key";
  auto issued = certs::issue(args.ca_dir, args.issue);
  if (!issued.ok()) return fail(issued.error());
  std::printf("%s certificate: %s\nkey:         %s (0600)\nserial:      %s\n",
              std::string(certs::cert_kind_name(*kind)).c_str(), issued->cert_file.c_str(),
              issued->key_file.c_str(), issued->serial_hex.c_str());
  return 0;
}

int run_pki_export(PkiExportArgs args) {
  if (!args.password_file.empty()) {
    std::ifstream in(args.password_file);
    if (!in) {
      std::fprintf(stderr, "error: cannot read %s\n", args.password_file.c_str());
      return 2;
    }
    std::getline(in, args.p12.password);
  } else if (::isatty(STDIN_FILENO) == 1) {
    // Typed: a prompt with echo off, entered twice.
    auto password = prompt_password(std::cin, args.p12.out.filename().string());
    if (!password.ok()) return fail(password.error());
    args.p12.password = std::move(password).value();
  } else {
    std::getline(std::cin, args.p12.password);  // piped: the first line (may be empty)
  }
  auto st = certs::export_p12(args.p12);
  if (!st.ok()) return fail(st.error());
  std::printf("PKCS#12 keystore: %s (0600)\n", args.p12.out.c_str());
  return 0;
}

int run_certs_info(const fs::path& file) {
  auto chain = certs::inspect_chain(file);
  if (!chain.ok()) return fail(chain.error());
  int i = 0;
  for (const auto& c : *chain) {
    std::printf("certificate %d%s\n", i, i == 0 ? " (leaf)" : "");
    print_info(c, "  ");
    ++i;
  }
  return 0;
}

int run_certs_check(CertsCheckArgs args) {
  args.check.purpose = args.purpose == "client" ? certs::Purpose::kClient : certs::Purpose::kServer;
  auto report = certs::check_certificate(args.check);
  if (!report.chain.empty()) print_info(report.chain.front(), "");
  std::printf("status:      %s\n", std::string(certs::cert_status_name(report.status)).c_str());
  if (report.chain_verified) {
    std::printf("chain:       %s\n", *report.chain_verified ? "verifies" : "does not verify");
  }
  for (const auto& w : report.warnings) std::printf("warning:     %s\n", w.c_str());
  for (const auto& p : report.problems) std::printf("PROBLEM:     %s\n", p.c_str());
  if (report.ok()) {
    std::printf("OK\n");
    return 0;
  }
  return 1;
}

core::Status make_demo_pki(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return core::make_error(core::ErrorCode::kIo, "cannot create " + dir.string());
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec, ec);
  const fs::path ca_dir = dir / "ca";
  if (!fs::exists(ca_dir / "ca.pem")) {
    certs::CaOptions ca;
    ca.common_name = "dicom-gw Demo Root CA";
    auto files = certs::init_ca(ca_dir, ca);
    if (!files.ok()) return files.error();
  }
  if (!fs::exists(dir / "server.pem")) {
    certs::IssueOptions server;
    server.kind = certs::CertKind::kServer;
    server.common_name = "localhost";
    server.sans = {"DNS:localhost", "IP:127.0.0.1"};
    server.out_cert = dir / "server.pem";
    server.out_key = dir / "server.key";
    auto issued = certs::issue(ca_dir, server);
    if (!issued.ok()) return issued.error();
  }
  if (!fs::exists(dir / "client.pem")) {
    certs::IssueOptions client;
    client.kind = certs::CertKind::kClient;
    client.common_name = "demo-client";
    client.out_cert = dir / "client.pem";
    client.out_key = dir / "client.key";
    auto issued = certs::issue(ca_dir, client);
    if (!issued.ok()) return issued.error();
  }
  return {};
}

}  // namespace gw::app
