#pragma once
/// `dicom-gw pki …` (a small site PKI: CA, server/client certificates, PKCS#12 for dcm4che/Java
/// users) and `dicom-gw certs info|check` (what is in a certificate, what is wrong with it).

#include <filesystem>
#include <string>
#include <vector>

#include "certs/pki.h"
#include "certs/x509_info.h"

namespace gw::app {

struct PkiInitArgs {
  std::filesystem::path dir;
  certs::CaOptions ca;
  std::string key_type = "ec-p256";
};

struct PkiIssueArgs {
  std::filesystem::path ca_dir;
  certs::IssueOptions issue;
  std::string kind = "server";
  std::string key_type = "ec-p256";
  std::string sans;  ///< comma-separated "DNS:a,IP:1.2.3.4"
};

struct PkiExportArgs {
  certs::ExportP12Options p12;
  std::filesystem::path password_file;  ///< empty: read one line from standard input
};

struct CertsCheckArgs {
  certs::CheckOptions check;
  std::string purpose = "server";
};

int run_pki_init(PkiInitArgs args);
int run_pki_issue(PkiIssueArgs args);
int run_pki_export(PkiExportArgs args);
int run_certs_info(const std::filesystem::path& file);
int run_certs_check(CertsCheckArgs args);

/// Creates the demo PKI under `dir` (ca/, server.pem/key for localhost + 127.0.0.1, client.pem/key)
/// unless it exists. Returns false with a message on failure.
core::Status make_demo_pki(const std::filesystem::path& dir);

}  // namespace gw::app
