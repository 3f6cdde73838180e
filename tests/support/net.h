#pragma once
/// Loopback ports for e2e tests. Tests only ever bind and connect 127.0.0.1.

#include <chrono>
#include <cstdint>

namespace gw::test {

using namespace std::chrono_literals;

/// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close).
/// Racy by nature: another process may take it before the server binds it, so a server that
/// fails to start should be retried on a new port (start_storescp does this for port 0).
std::uint16_t free_tcp_port();

/// Polls connect() to 127.0.0.1:`port` every few milliseconds until it succeeds (true) or
/// `timeout` passes (false). Each probe opens and closes a connection, which a DICOM server
/// sees as a peer that went away before sending an A-ASSOCIATE-RQ.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout = 10s);

/// True if a connect() to 127.0.0.1:`port` succeeds right now.
bool port_accepts(std::uint16_t port);

}  // namespace gw::test
