#pragma once
/// Audit rows as RFC 5424 syslog messages, framed for RFC 5425 (TLS) / RFC 6587 (TCP) by octet
/// counting. Pure functions: the exporter (syslog_export.h) sends what these return.
///
/// One row becomes (one line here; nothing is appended, the frame has no trailer):
///
///   LEN SP <PRI>1 TIMESTAMP HOSTNAME dicom-gw PROCID MSGID
///          [dicomgw@32473 id="…" actor="…" action="…" target="…" outcome="…" peer="…"] DETAILS
///
///  - PRI: facility 10 (authpriv, security/authorization, as IHE ATNA's ITI-20 uses), severity
///    5 notice for outcome "ok", 4 warning for "denied" and "failed": <85> or <84>.
///  - TIMESTAMP: the event's time (the row's at_ms) in UTC with milliseconds,
///    2024-05-01T12:00:00.123Z; HOSTNAME: this host; PROCID: the gateway's pid.
///  - MSGID: the row's action ("association.accepted"), printable ASCII, at most 32 octets.
///  - STRUCTURED-DATA: one element, SD-ID dicomgw@32473 (32473 is the documentation private
///    enterprise number, RFC 5612): the row's id (the collector's key against duplicates),
///    actor, action, target and outcome, and peer (the client's ip:port) when the row has one.
///    PARAM-VALUEs escape `"`, `\` and `]` with a backslash (RFC 5424 6.3.3).
///  - MSG: the row's details, a JSON object, re-serialised in ASCII (non-ASCII as \u escapes),
///    without a BOM, so it is valid UTF-8 whatever the collector assumes. A message is kept
///    within kMaxMessageOctets: longer details (the UID list of a large study) have their
///    longest lists cut and "truncated": true added; the database keeps the whole row.
/// Header fields that would be empty are "-" (NILVALUE); characters outside printable ASCII
/// in header fields become '_'; invalid UTF-8 in PARAM-VALUEs becomes U+FFFD.
///
/// Audit rows never hold secrets or patient names (index/auth.h); nothing beyond the row (and
/// the host name and pid) is sent.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "index/auth.h"

namespace gw::audit {

inline constexpr int kSyslogFacility = 10;  ///< authpriv (security/authorization messages)
inline constexpr int kSeverityWarning = 4;
inline constexpr int kSeverityNotice = 5;
inline constexpr std::string_view kSyslogAppName = "dicom-gw";
inline constexpr std::string_view kSyslogSdId = "dicomgw@32473";
/// RFC 5425 4.3.1: receivers SHOULD take 8192 octets (rsyslog's default maximum); a longer
/// octet-counted frame may be cut, and a cut frame can garble the ones after it.
inline constexpr std::size_t kMaxMessageOctets = 8192;

/// Who sends: the HOSTNAME and PROCID header fields.
struct SyslogOrigin {
  std::string hostname;  ///< "" becomes "-"
  std::string procid;    ///< "" becomes "-"
};

/// kSeverityNotice for "ok", kSeverityWarning for anything else ("denied", "failed").
int syslog_severity(std::string_view outcome);
/// facility * 8 + severity.
int syslog_pri(std::string_view outcome);
/// RFC 5424 TIMESTAMP of a Unix time in milliseconds: "2024-05-01T12:00:00.123Z" (UTC).
std::string syslog_timestamp(std::int64_t at_ms);
/// A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash; invalid UTF-8 replaced by U+FFFD.
std::string escape_param_value(std::string_view value);
/// A header field: printable ASCII (33-126) only, others '_', cut at `max_octets`, "-" if empty.
std::string header_field(std::string_view value, std::size_t max_octets);
/// The RFC 5424 message of one audit row (no framing).
std::string format_syslog_message(const index::AuditEvent& event, const SyslogOrigin& origin);
/// Appends "LEN SP MESSAGE" (octet counting, RFC 5425 4.3 / RFC 6587 3.4.1) to `out`.
void append_octet_counted(std::string& out, std::string_view message);

}  // namespace gw::audit
