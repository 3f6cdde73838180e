#include "support/orthanc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <stdexcept>

#include "support/net.h"
#include "support/poll.h"

namespace gw::test {

namespace fs = std::filesystem;
using nlohmann::json;

Orthanc::Orthanc(const fs::path& dir, const Tls* tls, std::vector<Modality> modalities)
    : dir_(dir), http_port_(0), dicom_port_(0) {
  fs::create_directories(dir / "storage");
  json peers = json::object();
  for (const auto& m : modalities) {
    peers[m.name] = {
        {"AET", m.aet}, {"Host", "127.0.0.1"}, {"Port", m.port}, {"UseDicomTls", m.tls}};
  }
  // Ports come from free_tcp_port(), so another process may take one before Orthanc binds it:
  // then Orthanc exits (or a stranger answers on the port) and we try again with fresh ports,
  // as Gateway::start does. Bounded: a few attempts, each with its own deadline.
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    http_port_ = free_tcp_port();
    do {
      dicom_port_ = free_tcp_port();  // distinct: the kernel may hand out the same port twice
    } while (dicom_port_ == http_port_);
    json config = {
        {"Name", "gw-e2e"},
        {"StorageDirectory", (dir / "storage").string()},
        {"IndexDirectory", (dir / "storage").string()},
        {"DicomAet", "ORTHANC"},
        {"DicomPort", dicom_port_},
        {"HttpPort", http_port_},
        {"RemoteAccessAllowed", false},
        {"AuthenticationEnabled", false},
        {"DicomModalities", peers},
    };
    if (tls != nullptr) {
      config["DicomTlsEnabled"] = true;
      config["DicomTlsCertificate"] = tls->cert.string();
      config["DicomTlsPrivateKey"] = tls->key.string();
      config["DicomTlsTrustedCertificates"] = tls->trusted.string();
      config["DicomTlsRemoteCertificateRequired"] = true;
    }
    std::ofstream(dir / "orthanc.json") << config.dump(2);
    ProcessOptions o;
    o.argv = {kOrthancBinary, (dir / "orthanc.json").string()};
    o.env = {{"TCP_NODELAY", "1"}};
    o.log_dir = dir;  // orthanc-N.stdout / orthanc-N.stderr in the test's temp dir
    o.log_name = "orthanc-" + std::to_string(attempt);
    process_ = std::make_unique<Process>(Process::start(o));
    // Stop waiting as soon as Orthanc has exited; up only if it still runs once both ports
    // accept (a port some other process holds would accept too, and Orthanc then exits).
    const bool ready = wait_until(
        [&]() {
          return !process_->running() || (port_accepts(http_port_) && port_accepts(dicom_port_));
        },
        std::chrono::seconds(30));
    if (ready && process_->running()) return;
    const std::string why = log();
    process_->kill9();
    if (attempt == kAttempts || !ready) {
      throw std::runtime_error("Orthanc did not start (attempt " + std::to_string(attempt) +
                               "):\n" + why);
    }
  }
}

Orthanc::~Orthanc() { stop(); }

int Orthanc::stop() { return process_ ? process_->terminate(std::chrono::seconds(15)) : 0; }

std::string Orthanc::log() const { return process_ ? process_->read_stderr() : ""; }

json Orthanc::rest(const std::string& method, const std::string& path,
                   std::vector<std::string> body_args) const {
  std::vector<std::string> argv{"curl", "-sS", "--fail-with-body", "--max-time", "120",
                                "-X",   method};
  argv.insert(argv.end(), body_args.begin(), body_args.end());
  argv.push_back("http://127.0.0.1:" + std::to_string(http_port_) + path);
  const auto r = run_command(argv, {}, std::chrono::seconds(150));
  EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.err << r.out;
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

std::string Orthanc::upload(const fs::path& file) const {
  const json reply = rest("POST", "/instances", {"--data-binary", "@" + file.string()});
  return reply.is_object() && reply.contains("ID") ? reply["ID"].get<std::string>() : "";
}

std::int64_t Orthanc::count_instances() const {
  const json stats = rest("GET", "/statistics");
  return stats.is_object() && stats.contains("CountInstances")
             ? stats["CountInstances"].get<std::int64_t>()
             : -1;
}

std::vector<fs::path> Orthanc::download_all(const fs::path& out_dir) const {
  fs::create_directories(out_dir);
  std::vector<fs::path> files;
  const json ids = rest("GET", "/instances");
  if (!ids.is_array()) return files;
  for (const auto& id : ids) {
    const std::string name = id.get<std::string>();
    const fs::path out = out_dir / (name + ".dcm");
    const auto r = run_command(
        {"curl", "-sS", "--fail", "--max-time", "120", "-o", out.string(),
         "http://127.0.0.1:" + std::to_string(http_port_) + "/instances/" + name + "/file"},
        {}, std::chrono::seconds(150));
    EXPECT_TRUE(r.ok()) << "download " << name << ": " << r.err;
    if (r.ok()) files.push_back(out);
  }
  return files;
}

}  // namespace gw::test
