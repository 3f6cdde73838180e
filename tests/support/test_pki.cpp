#include "support/test_pki.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "certs/openssl_util.h"

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

std::filesystem::path TestPki::revoke(const std::vector<std::string>& serials,
                                      const std::string& file) {
  using certs::Deleter;
  auto fail = [](const std::string& what) {
    return std::runtime_error("test PKI: revoke: " + what + ": " + certs::openssl_error());
  };
  // The issuer of leaves: the intermediate when there is one (see certs/pki.h).
  const bool intermediate = std::filesystem::exists(ca_dir() / "intermediate.pem");
  auto issuer = certs::read_certificates(ca_dir() / (intermediate ? "intermediate.pem" : "ca.pem"));
  if (!issuer.ok() || issuer->empty()) throw fail("cannot read the issuing CA certificate");
  auto key = certs::read_private_key(ca_dir() / (intermediate ? "intermediate.key" : "ca.key"));
  if (!key.ok()) throw fail("cannot read the issuing CA key");

  std::unique_ptr<X509_CRL, Deleter<&X509_CRL_free>> crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer->front().get())) != 1) {
    throw fail("X509_CRL_new");
  }
  const std::time_t now = std::time(nullptr);
  certs::Asn1TimePtr last(ASN1_TIME_adj(nullptr, now, 0, -300));
  certs::Asn1TimePtr next(ASN1_TIME_adj(nullptr, now, 30, 0));
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    throw fail("CRL validity");
  }
  for (const auto& hex : serials) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, hex.c_str()) == 0) throw fail("bad serial " + hex);
    certs::BignumPtr bn(raw);
    certs::Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    std::unique_ptr<X509_REVOKED, Deleter<&X509_REVOKED_free>> entry(X509_REVOKED_new());
    if (!serial || !entry || X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      throw fail("revoked entry " + hex);
    }
    entry.release();  // owned by the CRL now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), key->get(), EVP_sha256()) == 0) {
    throw fail("X509_CRL_sign");
  }
  certs::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) throw fail("PEM_write");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  const auto path = dir_ / file;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, n);
  if (!out.flush()) throw std::runtime_error("test PKI: revoke: cannot write " + path.string());
  return path;
}

}  // namespace gw::test
