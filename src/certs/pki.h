#pragma once
/// A small site PKI: a root CA (optionally with one intermediate), server and client
/// certificates for DICOM TLS, and PKCS#12 keystores for Java peers (dcm4che). Backs
/// `dicom-gw pki init|issue|export-p12` and `dicom-gw demo`.
///
/// CA directory layout (init_ca writes it, issue reads it):
///   ca.key  ca.pem                                   the root (key 0600)
///   intermediate.key  intermediate.pem  ca-chain.pem  with an intermediate; ca-chain.pem is
///                                                      intermediate + root (trust stores)
/// Leaf certificates are signed by the intermediate when there is one, else by the root.
/// Private keys are unencrypted PKCS#8 PEM with mode 0600 and are never logged.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "certs/openssl_util.h"
#include "core/result.h"

namespace gw::certs {

struct KeySpec {
  enum class Type {
    kEcP256,   ///< ECDSA P-256: small, fast, accepted by DCMTK, dcm4che and Orthanc
    kRsa3072,  ///< NIST strength equivalent to P-256
    kRsa2048,  ///< the minimum most TLS stacks accept
    kRsa1024,  ///< weak: for tests of rejection only; refused unless allow_weak
  };
  Type type = Type::kEcP256;
  /// Must be true to generate a kRsa1024 key.
  bool allow_weak = false;
};

/// "ec-p256", "rsa3072", "rsa2048", "rsa1024".
std::string_view key_type_name(KeySpec::Type type);
/// Parses key_type_name's spelling (CLI `--key-type`); also "ec", "p256", "rsa" (= rsa3072).
core::Result<KeySpec::Type> parse_key_type(std::string_view name);

/// A new private key. kInvalidArgument for kRsa1024 without allow_weak.
core::Result<PkeyPtr> generate_key(const KeySpec& spec);

struct CaOptions {
  std::string common_name = "dicom-gw Demo Root CA";
  std::string organization;  ///< empty: no O= in the subject
  int days = 3650;
  bool with_intermediate = false;
  std::string intermediate_common_name = "dicom-gw Demo Intermediate CA";
  KeySpec key;
  /// Replace existing CA files. Without it an existing ca.key (or any file init_ca would
  /// write) is an kAlreadyExists error and nothing is written.
  bool overwrite = false;
};

/// Paths of the files of a CA directory; the intermediate ones are empty without one.
struct CaFiles {
  std::filesystem::path root_key;
  std::filesystem::path root_cert;
  std::filesystem::path intermediate_key;
  std::filesystem::path intermediate_cert;
  std::filesystem::path chain;  ///< ca-chain.pem: intermediate + root
};

/// Creates `dir` (mode 0750) and the CA in it. CA certificates carry basicConstraints critical
/// CA:TRUE (pathlen:0 on the intermediate), keyUsage critical keyCertSign+cRLSign, SKI and AKI,
/// and are signed with SHA-256.
core::Result<CaFiles> init_ca(const std::filesystem::path& dir, const CaOptions& options);

enum class CertKind { kServer, kClient, kBoth };

/// "server", "client", "both"; and the parser for the CLI.
std::string_view cert_kind_name(CertKind kind);
core::Result<CertKind> parse_cert_kind(std::string_view name);

struct IssueOptions {
  CertKind kind = CertKind::kServer;
  std::string common_name;   ///< required
  std::string organization;  ///< empty: no O= in the subject
  /// subjectAltName entries: "DNS:name", "IP:1.2.3.4", "IP:::1", or a bare name or address.
  /// A certificate for a server always gets a SAN: DNS:<common_name> when this is empty.
  std::vector<std::string> sans;
  int days = 825;
  std::filesystem::path out_cert;  ///< required
  std::filesystem::path out_key;   ///< required
  KeySpec key;
  /// Write leaf + intermediate into out_cert, the form a TLS server must present when its
  /// CA has an intermediate. Without an intermediate this changes nothing.
  bool include_chain_in_cert = false;
  bool overwrite = false;
};

struct IssuedCertificate {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::string serial_hex;  ///< upper-case hex, as inspect_certificate reports it
};

/// Issues a certificate from the CA in `ca_dir` (see the layout above). Leaf extensions:
/// basicConstraints CA:FALSE, keyUsage digitalSignature (+ keyEncipherment for RSA),
/// extendedKeyUsage serverAuth and/or clientAuth, subjectAltName, SKI, AKI; random positive
/// 128-bit serial; SHA-256.
core::Result<IssuedCertificate> issue(const std::filesystem::path& ca_dir,
                                      const IssueOptions& options);

struct ExportP12Options {
  std::filesystem::path cert;  ///< leaf first; further certificates in it join the chain
  std::filesystem::path key;
  std::filesystem::path ca;   ///< optional: CA certificates added to the chain
  std::filesystem::path out;  ///< written 0600 (it holds the private key)
  std::string password;       ///< may be empty; never logged
  std::string friendly_name;  ///< the Java keystore alias; empty: the subject CN
  bool overwrite = false;
};

/// Writes a PKCS#12 keystore with OpenSSL 3 defaults (PBES2 AES-256-CBC, HMAC-SHA-256),
/// readable by Java 11+ keytool and dcm4che. kInvalidArgument if the key does not match.
/// (A Java *trust* store holding only CA certificates needs keytool; see seeds 002/003.)
core::Status export_p12(const ExportP12Options& options);

/// Certificates no sane issuer would make, for tests of the checks that reject them:
/// expired or not-yet-valid, weak keys, SHA-1 signatures, wrong or missing EKU, self-signed
/// leaves. Nothing here is for production.
struct TestCertificateOptions {
  std::string common_name = "test";
  std::vector<std::string> sans;  ///< as IssueOptions; empty: no SAN at all
  /// EKU to put in; nullopt: no extendedKeyUsage extension.
  std::optional<CertKind> kind = CertKind::kServer;
  KeySpec key;
  /// Validity; nullopt: now - 5 minutes / now + 365 days.
  std::optional<std::chrono::system_clock::time_point> not_before;
  std::optional<std::chrono::system_clock::time_point> not_after;
  /// Sign with the leaf's own key instead of the CA in ca_dir.
  bool self_signed = false;
  std::filesystem::path ca_dir;  ///< issuer when not self_signed (intermediate if present)
  bool sha1_signature = false;
  bool is_ca = false;  ///< basicConstraints CA:TRUE
  std::filesystem::path out_cert;
  std::filesystem::path out_key;
};

core::Result<IssuedCertificate> make_test_certificate(const TestCertificateOptions& options);

}  // namespace gw::certs
