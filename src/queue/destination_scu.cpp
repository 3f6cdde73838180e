#include "queue/destination_scu.h"

namespace gw::queue {

dicom::ScuOptions destination_scu_options(const config::Destination& destination,
                                          const std::string& gateway_ae_title) {
  dicom::ScuOptions o;
  o.calling_ae =
      destination.calling_ae_title.empty() ? gateway_ae_title : destination.calling_ae_title;
  o.called_ae = destination.ae_title;
  o.host = destination.host;
  o.port = destination.port;
  o.async_operations = destination.max_async_operations;
  return o;
}

dicom::ScuTlsOptions destination_tls_options(const config::Destination& destination) {
  dicom::ScuTlsOptions t;
  t.cert = destination.tls_cert_path;
  t.key = destination.tls_key_path;
  t.ca = destination.tls_ca_path;
  t.profile = destination.tls_profile;
  t.verify_hostname = destination.verify_hostname;
  t.cert_name = "tls_cert_path";
  t.key_name = "tls_key_path";
  t.ca_name = "tls_ca_path";
  return t;
}

}  // namespace gw::queue
