#pragma once
/// How the gateway calls a configured destination: the one translation of a `destinations:`
/// entry into SCU options, shared by the forwarders and the API's C-ECHO, so both always dial
/// with the same AE titles, TLS files, profile and host name check.

#include <string>

#include "config/config.h"
#include "dicom/scu.h"

namespace gw::queue {

/// AE titles (calling: the destination's calling_ae_title, else the gateway's), host, port;
/// default timeouts; no TLS (see destination_tls_options).
dicom::ScuOptions destination_scu_options(const config::Destination& destination,
                                          const std::string& gateway_ae_title);

/// The destination's TLS files, profile and host name check, without a built context (building
/// one reads files: do it off the I/O threads, ScuTlsOptions::make_context()).
dicom::ScuTlsOptions destination_tls_options(const config::Destination& destination);

}  // namespace gw::queue
