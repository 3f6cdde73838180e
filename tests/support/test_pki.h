#pragma once
/// A throw-away PKI for tests (gw::certs): a root CA (with an intermediate by default) in
/// <dir>/ca, and certificates issued into <dir>/<name>.pem / <name>.key. Failures throw
/// std::runtime_error: a test cannot go on without its certificates.

#include <filesystem>
#include <string>
#include <vector>

#include "certs/pki.h"

namespace gw::test {

class TestPki {
 public:
  explicit TestPki(std::filesystem::path dir, bool with_intermediate = true);

  std::filesystem::path ca_dir() const { return dir_ / "ca"; }
  /// Trust bundle: intermediate + root (or the root alone without an intermediate).
  const std::filesystem::path& chain() const { return chain_; }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path cert(const std::string& name) const { return dir_ / (name + ".pem"); }
  std::filesystem::path key(const std::string& name) const { return dir_ / (name + ".key"); }

  /// Issues NAME.pem (leaf + intermediate) and NAME.key from the CA; returns the serial (hex).
  std::string issue(const std::string& name, certs::CertKind kind,
                    std::vector<std::string> sans = {});
  /// A certificate checks must refuse (expired, weak key, wrong EKU, self-signed, …), issued
  /// by the CA unless `options.self_signed`.
  std::string issue_test(const std::string& name, certs::TestCertificateOptions options);
  /// Writes <dir>/<file>: a PEM CRL (v2, SHA-256, valid from 5 minutes ago for 30 days) signed
  /// by the CA that issues leaves (the intermediate, else the root), revoking `serials` (hex,
  /// as issue() returns them; may be empty). Returns its path.
  std::filesystem::path revoke(const std::vector<std::string>& serials,
                               const std::string& file = "crl.pem");

 private:
  std::filesystem::path dir_;
  std::filesystem::path chain_;
  std::filesystem::path root_;
};

}  // namespace gw::test
