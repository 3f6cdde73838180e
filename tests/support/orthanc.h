#pragma once
/// A real Orthanc (Debian package `orthanc`) as a test peer: its own JSON config in a temp dir,
/// free loopback ports, optional DICOM TLS (mutual), stopped by PID. Its REST API is reached
/// with curl on 127.0.0.1 (plain HTTP, no auth, loopback only).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.h"

namespace gw::test {

inline constexpr const char* kOrthancBinary = "/usr/sbin/Orthanc";

class Orthanc {
 public:
  struct Tls {
    std::filesystem::path cert, key, trusted;
  };
  /// A DICOM peer Orthanc may send to (its `DicomModalities`).
  struct Modality {
    std::string name;
    std::string aet;
    std::uint16_t port = 0;
    bool tls = false;
  };

  /// Starts Orthanc (AE title ORTHANC); throws std::runtime_error if it does not come up in
  /// 30 s. With `tls`, its DICOM port speaks DICOM TLS only and requires a client certificate.
  Orthanc(const std::filesystem::path& dir, const Tls* tls, std::vector<Modality> modalities);
  ~Orthanc();

  int stop();
  std::uint16_t dicom_port() const { return dicom_port_; }
  std::string log() const;

  /// curl -X METHOD [body_args] http://127.0.0.1:PORT/PATH; the body parsed as JSON (null if it
  /// is not JSON). A failed request is a test failure (EXPECT).
  nlohmann::json rest(const std::string& method, const std::string& path,
                      std::vector<std::string> body_args = {}) const;
  /// POST /instances; the new instance's Orthanc ID ("" on failure).
  std::string upload(const std::filesystem::path& file) const;
  /// GET /statistics CountInstances (-1 on failure).
  std::int64_t count_instances() const;
  /// Every stored instance, downloaded (GET /instances/{id}/file) into `out_dir`.
  std::vector<std::filesystem::path> download_all(const std::filesystem::path& out_dir) const;

 private:
  std::filesystem::path dir_;
  std::uint16_t http_port_;
  std::uint16_t dicom_port_;
  std::unique_ptr<Process> process_;
};

}  // namespace gw::test
