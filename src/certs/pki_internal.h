#pragma once
/// Internal to the PKI (pki.cpp, pki_x509.cpp, pki_issue.cpp, pki_p12.cpp): certificate
/// construction and the CA-directory and output helpers they share. Not a public header:
/// include certs/pki.h.

#include <chrono>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certs/openssl_util.h"
#include "certs/pki.h"
#include "core/result.h"

namespace gw::certs::detail {

inline constexpr auto kBackdate = std::chrono::minutes(5);  // tolerate peers' clock skew

std::string lower(std::string_view s);

// ---- subjectAltName (pki_x509.cpp) ----------------------------------------------------------

struct San {
  bool is_ip = false;
  std::string dns;
  std::vector<unsigned char> ip;  // 4 or 16 bytes
};

/// "DNS:name", "IP:address", or a bare name or address, each checked.
core::Result<std::vector<San>> parse_sans(const std::vector<std::string>& entries);
/// The SANs of a certificate for `kind`: the given ones, or for a server DNS:<cn> (IP:<cn> if
/// the common name is an address).
core::Result<std::vector<San>> sans_for(const std::optional<CertKind>& kind,
                                        const std::string& common_name,
                                        const std::vector<std::string>& entries);

// ---- certificate construction (pki_x509.cpp) ------------------------------------------------

enum class Role { kRootCa, kIntermediateCa, kLeaf };

struct CertSpec {
  Role role = Role::kLeaf;
  std::string common_name;
  std::string organization;
  EVP_PKEY* key = nullptr;         // subject key (public part is certified)
  X509* issuer_cert = nullptr;     // nullptr: self-signed
  EVP_PKEY* issuer_key = nullptr;  // nullptr: self-signed with `key`
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  std::optional<CertKind> eku;     // leaves only
  std::vector<San> sans;           // leaves only; empty: no SAN extension
  bool leaf_is_ca = false;         // tests only
  const EVP_MD* digest = nullptr;  // nullptr: SHA-256
};

core::Result<X509Ptr> build_certificate(const CertSpec& spec);
/// Upper-case hex of the certificate's serial; empty if it cannot be read.
std::string serial_hex(X509* cert);

// ---- CA directory and output files (pki.cpp) ------------------------------------------------

struct Issuer {
  X509Ptr cert;
  PkeyPtr key;
  bool is_intermediate = false;
};

/// The CA in `ca_dir` that signs leaves: the intermediate if there is one, else the root.
core::Result<Issuer> load_issuer(const std::filesystem::path& ca_dir);
/// kAlreadyExists for the first of `paths` that exists, unless `overwrite`.
core::Status refuse_existing(const std::vector<std::filesystem::path>& paths, bool overwrite);
/// PEM certificates, mode 0644, written atomically.
core::Status write_certs(const std::filesystem::path& path, const std::vector<X509*>& certs,
                         bool overwrite);
std::time_t days_from(std::time_t start, int days);
/// kInvalidArgument unless 1 <= days <= 36500.
core::Status check_days(int days);

}  // namespace gw::certs::detail
