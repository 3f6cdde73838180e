#include "support/test_pki.h"

#include <stdexcept>

namespace gw::test {

TestPki::TestPki(std::filesystem::path dir, bool with_intermediate) : dir_(std::move(dir)) {
  certs::CaOptions ca;
  ca.with_intermediate = with_intermediate;
  auto files = certs::init_ca(ca_dir(), ca);
  if (!files.ok()) throw std::runtime_error("test PKI: " + files.error().message);
  root_ = files->root_cert;
  chain_ = with_intermediate ? files->chain : files->root_cert;
}

std::string TestPki::issue(const std::string& name, certs::CertKind kind,
                           std::vector<std::string> sans) {
  certs::IssueOptions o;
  o.kind = kind;
  o.common_name = name;
  o.sans = std::move(sans);
  o.out_cert = cert(name);
  o.out_key = key(name);
  o.include_chain_in_cert = true;
  o.overwrite = true;
  auto issued = certs::issue(ca_dir(), o);
  if (!issued.ok())
    throw std::runtime_error("test PKI: issue " + name + ": " + issued.error().message);
  return issued->serial_hex;
}

std::string TestPki::issue_test(const std::string& name, certs::TestCertificateOptions options) {
  options.common_name = name;
  if (options.ca_dir.empty()) options.ca_dir = ca_dir();
  options.out_cert = cert(name);
  options.out_key = key(name);
  auto issued = certs::make_test_certificate(options);
  if (!issued.ok()) {
    throw std::runtime_error("test PKI: issue_test " + name + ": " + issued.error().message);
  }
  return issued->serial_hex;
}

}  // namespace gw::test
