#pragma once
/// Audit rows as DICOM audit messages (PS3.15 A.5: the XML an IHE ATNA audit record repository
/// takes) in RFC 5424 syslog messages as IHE ITI-20 sends them (`audit.syslog.format: dicom`).
/// Pure functions: the exporter (syslog_export.h) frames and sends what these return.
///
/// One message (one line here):
///
///   <PRI>1 TIMESTAMP HOSTNAME dicom-gw PROCID IHE+RFC-3881 - BOM<AuditMessage>…</AuditMessage>
///
///  - PRI: facility 10 (authpriv); severity from EventOutcomeIndicator: 0 → 5 notice,
///    4 → 4 warning, 8 → 3 error. No STRUCTURED-DATA ("-"); MSG is UTF-8 after a BOM (RFC 5424
///    MSG-UTF8), without an XML declaration.
///  - The XML follows the DICOM audit message schema (PS3.15 A.5.1): no namespace, elements in
///    the schema's order, coded values as csd-code / codeSystemName / originalText.
///
/// Which rows become which event (A.5.3); rows without a DICOM counterpart become no message:
///
///   gateway.started / .stopped      110100 Application Activity (110120 / 110121)
///   instances.received              110104 DICOM Instances Transferred, action C (we receive)
///   instances.forwarded             110104 DICOM Instances Transferred, action R (we send)
///   instance.downloaded             110103 DICOM Instances Accessed, action R
///   auth.login / .login_failed      110114 User Authentication, 110122 Login
///   association.rejected            110113 Security Alert, 110126 Node Authentication
///   auth.denied, queue.*            110113 Security Alert, 110132 Use of Restricted Function
///   user.*, token.*                 110113 Security Alert, 110137 User Security Attributes Changed
///   config.reload                   110113 Security Alert, 110131 Software Configuration
///   destination.create/update/delete 110113 Security Alert, 110128 Network Configuration
///   certs.*, db.rotate_key          110113 Security Alert, 110129 Security Configuration
///   anything else (association.accepted, destination.echo, storage.verify …): no message
///
/// A transfer row with both successes and failures becomes two messages (A.5.2: one outcome
/// per message): the stored/delivered instances with outcome 0, the failed ones with 4 (8 when
/// nothing of the row succeeded). Transfers and accesses name the study (110180) with its SOP
/// classes and counts, and the patient (Patient Number) by Patient ID when the caller found it
/// in the index: the audit table itself holds no patient data. Patient names are never sent.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/syslog_message.h"
#include "index/auth.h"

namespace gw::audit {

inline constexpr std::string_view kDicomAuditMsgId = "IHE+RFC-3881";

/// What a message needs beyond its row.
struct DicomAuditSource {
  SyslogOrigin origin;             ///< HOSTNAME, PROCID; the gateway's machine name in the XML
  std::string audit_source_id;     ///< AuditSourceID ("" = origin.hostname)
  std::string enterprise_site_id;  ///< AuditEnterpriseSiteID ("" = left out)
};

/// The Study Instance UID a row concerns (transfers, accesses), or "" — the study whose
/// Patient ID the caller may look up for it.
std::string audited_study(const index::AuditEvent& event);

/// XML character data / attribute value: &, <, >, " and ' escaped; characters XML 1.0 forbids
/// (controls other than tab, newline, carriage return) and invalid UTF-8 become U+FFFD.
std::string xml_escape(std::string_view text);

/// The RFC 5424 messages (no framing) of one audit row: none when the row has no DICOM
/// counterpart, two for a transfer with mixed outcomes. `patient_id`: the audited study's
/// Patient ID when known ("" leaves the patient out).
std::vector<std::string> format_dicom_audit_messages(const index::AuditEvent& event,
                                                     const DicomAuditSource& source,
                                                     const std::string& patient_id);

}  // namespace gw::audit
