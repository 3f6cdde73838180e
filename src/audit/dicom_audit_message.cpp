#include "audit/dicom_audit_message.h"

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/peer_address.h"
#include "core/utf8.h"

namespace gw::audit {

namespace {

using Json = nlohmann::json;

// ---- XML ---------------------------------------------------------------------------------------

struct Attr {
  std::string_view name;
  std::string value;  ///< "" leaves the attribute out (every required one is filled by callers)
};

std::string element(std::string_view name, std::initializer_list<Attr> attrs,
                    std::string_view children = {}) {
  std::string out = "<";
  out += name;
  for (const auto& a : attrs) {
    if (a.value.empty()) continue;
    out += fmt::format(" {}=\"{}\"", a.name, xml_escape(a.value));
  }
  if (children.empty()) return out + "/>";
  return out + ">" + std::string(children) + "</" + std::string(name) + ">";
}

std::string text_element(std::string_view name, std::string_view text) {
  return fmt::format("<{0}>{1}</{0}>", name, xml_escape(text));
}

/// A coded value (EventID, RoleIDCode, …): the schema's CodedValueType.
std::string coded(std::string_view name, std::string_view code, std::string_view system,
                  std::string_view meaning) {
  return element(name, {{"csd-code", std::string(code)},
                        {"codeSystemName", std::string(system)},
                        {"originalText", std::string(meaning)}});
}

std::string dcm(std::string_view name, std::string_view code, std::string_view meaning) {
  return coded(name, code, "DCM", meaning);
}

// ---- the row -----------------------------------------------------------------------------------

Json details_of(const index::AuditEvent& event) {
  Json j = Json::parse(event.details, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : Json::object();
}

std::string str(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t num(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

/// NetworkAccessPointTypeCode: 2 for an IP address, 1 for a machine name.
std::string access_point_type(const std::string& host) {
  if (host.empty()) return "";
  const bool ip = host.find(':') != std::string::npos ||
                  host.find_first_not_of("0123456789.") == std::string::npos;
  return ip ? "2" : "1";
}

/// "user:alice" -> "alice", "ae:CT1" -> "CT1"; other actors ("system", "cli", "anonymous") as
/// they are.
std::string actor_id(const std::string& actor) {
  for (std::string_view prefix : {"user:", "ae:"}) {
    if (actor.starts_with(prefix)) return actor.substr(prefix.size());
  }
  return actor.empty() ? std::string("anonymous") : actor;
}

/// Free text from the row (a TLS subject, a reason, a user name) cut to `max` octets on a
/// UTF-8 boundary, so that no message outgrows kMaxMessageOctets (a cut frame garbles the ones
/// after it at the collector). With these limits, and every octet escaped at most 6-fold, the
/// largest message is about 7 KiB: a Patient ID of 256 octets twice, 16 SOP classes, three
/// participant names, a description.
std::string clip(std::string text, std::size_t max = 64) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "...";
}

/// At most this many SOPClass elements per study: the rest are counted in one without a UID.
constexpr std::size_t kMaxSopClasses = 16;

struct Outcome {
  int indicator = 0;        ///< EventOutcomeIndicator
  std::string description;  ///< EventOutcomeDescription ("" = left out)
};

int indicator_of(std::string_view outcome) { return outcome == "ok" ? 0 : 4; }

int severity_of(int indicator) {
  if (indicator == 0) return kSeverityNotice;
  if (indicator == 4) return kSeverityWarning;
  return 3;  // error: serious or major failure
}

// ---- message parts -----------------------------------------------------------------------------

std::string event_identification(std::string_view action_code, std::int64_t at_ms,
                                 const Outcome& outcome, const std::string& event_id,
                                 const std::string& event_type = {}) {
  std::string children = event_id + event_type;
  if (!outcome.description.empty()) {
    children += text_element("EventOutcomeDescription", outcome.description);
  }
  return element("EventIdentification",
                 {{"EventActionCode", std::string(action_code)},
                  {"EventDateTime", syslog_timestamp(at_ms)},
                  {"EventOutcomeIndicator", std::to_string(outcome.indicator)}},
                 children);
}

struct Participant {
  std::string user_id;
  std::string alternative_user_id;
  std::string user_name;
  bool requestor = false;
  std::string access_point;  ///< host name or IP address ("" = left out)
  std::string role;          ///< a RoleIDCode element, or ""
};

std::string active_participant(const Participant& p) {
  return element("ActiveParticipant",
                 {{"UserID", p.user_id.empty() ? std::string("anonymous") : clip(p.user_id)},
                  {"AlternativeUserID", clip(p.alternative_user_id)},
                  {"UserName", clip(p.user_name, 128)},
                  {"UserIsRequestor", p.requestor ? "true" : "false"},
                  {"NetworkAccessPointID", p.access_point},
                  {"NetworkAccessPointTypeCode", access_point_type(p.access_point)}},
                 p.role);
}

/// This gateway's UserID as a participant, and its AuditSourceID: the configured audit source
/// id, else its host name.
std::string application_id(const DicomAuditSource& source) {
  return source.audit_source_id.empty() ? source.origin.hostname : source.audit_source_id;
}

std::string audit_source(const DicomAuditSource& source) {
  const std::string id = application_id(source);
  // 4: application server process (the schema's own code, no code system needed).
  return element("AuditSourceIdentification",
                 {{"AuditEnterpriseSiteID", source.enterprise_site_id},
                  {"AuditSourceID", id.empty() ? std::string("dicom-gw") : id}},
                 element("AuditSourceTypeCode", {{"csd-code", "4"}}));
}

/// The study, with its SOP classes (UID -> count; one entry without a UID when the classes are
/// not known) and, when listed, its instances.
std::string study_object(const std::string& uid_as_received,
                         const std::vector<std::pair<std::string, std::int64_t>>& sop_classes) {
  // A UID has at most 64 characters; what a peer sent as one is not checked at ingest.
  const std::string study_uid = clip(uid_as_received);
  std::string description;
  std::int64_t others = 0;
  for (std::size_t i = 0; i < sop_classes.size(); ++i) {
    const auto& [uid, count] = sop_classes[i];
    if (sop_classes.size() > kMaxSopClasses && i >= kMaxSopClasses - 1) {
      others += count;
      continue;
    }
    description +=
        element("SOPClass", {{"UID", clip(uid)}, {"NumberOfInstances", std::to_string(count)}});
  }
  if (others > 0) {
    description += element("SOPClass", {{"NumberOfInstances", std::to_string(others)}});
  }
  std::string children = dcm("ParticipantObjectIDTypeCode", "110180", "Study Instance UID");
  // The schema asks for a name or a query: the UID names the study (no patient data).
  children += text_element("ParticipantObjectName", study_uid);
  if (!description.empty()) children += element("ParticipantObjectDescription", {}, description);
  return element("ParticipantObjectIdentification",
                 {{"ParticipantObjectID", study_uid},
                  {"ParticipantObjectTypeCode", "2"},       // system object
                  {"ParticipantObjectTypeCodeRole", "3"}},  // report
                 children);
}

std::string patient_object(const std::string& id) {
  const std::string patient_id = clip(id, 256);  // an LO value: 64 characters
  std::string children = coded("ParticipantObjectIDTypeCode", "2", "RFC-3881", "Patient Number");
  // The schema asks for a name or a query; the patient's name is never sent: the ID again.
  children += text_element("ParticipantObjectName", patient_id);
  return element("ParticipantObjectIdentification",
                 {{"ParticipantObjectID", patient_id},
                  {"ParticipantObjectTypeCode", "1"},       // person
                  {"ParticipantObjectTypeCodeRole", "1"}},  // patient
                 children);
}

std::string user_object(const std::string& user) {
  const std::string name = clip(user);
  std::string children = coded("ParticipantObjectIDTypeCode", "11", "RFC-3881", "User Identifier");
  children += text_element("ParticipantObjectName", name);
  return element("ParticipantObjectIdentification",
                 {{"ParticipantObjectID", name},
                  {"ParticipantObjectTypeCode", "1"},        // person
                  {"ParticipantObjectTypeCodeRole", "11"}},  // security user entity
                 children);
}

std::string wrap_message(const index::AuditEvent& event, const DicomAuditSource& source,
                         int indicator, const std::string& xml) {
  const int pri = kSyslogFacility * 8 + severity_of(indicator);
  std::string out =
      fmt::format("<{}>1 {} {} {} {} {} - \xEF\xBB\xBF", pri, syslog_timestamp(event.at_ms),
                  header_field(source.origin.hostname, 255), header_field(kSyslogAppName, 48),
                  header_field(source.origin.procid, 128), kDicomAuditMsgId);
  out += "<AuditMessage>";
  out += xml;
  out += "</AuditMessage>";
  return out;
}

/// The machine name of this gateway in its own participant.
std::string own_host(const DicomAuditSource& source) { return source.origin.hostname; }

// ---- events ------------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::int64_t>> sop_class_counts(const Json& d,
                                                                   std::int64_t total) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  std::int64_t counted = 0;
  if (const auto it = d.find("sop_classes"); it != d.end() && it->is_object()) {
    for (const auto& [uid, n] : it->items()) {
      if (!n.is_number_integer() || n.get<std::int64_t>() <= 0) continue;
      out.emplace_back(uid, n.get<std::int64_t>());
      counted += n.get<std::int64_t>();
    }
  }
  if (total > counted) out.emplace_back("", total - counted);  // classes not known
  return out;
}

/// 110104 DICOM Instances Transferred: a received or forwarded row, split by outcome.
std::vector<std::string> transferred(const index::AuditEvent& event, const DicomAuditSource& source,
                                     const std::string& patient_id, bool received) {
  const Json d = details_of(event);
  const std::string study = str(d, "study_instance_uid");
  const std::int64_t ok = num(d, "instances");
  const std::int64_t failed = received ? num(d, "failed") : num(d, "retried") + num(d, "dead");

  Participant from;
  Participant to;
  if (received) {
    from = {str(d, "calling_ae"),
            "",
            str(d, "tls_subject"),
            true,
            core::host_of_peer(event.peer_address),
            dcm("RoleIDCode", "110153", "Source Role ID")};
    to = {str(d, "called_ae"),
          source.origin.procid,
          "",
          false,
          own_host(source),
          dcm("RoleIDCode", "110152", "Destination Role ID")};
  } else {
    from = {str(d, "calling_ae"),
            source.origin.procid,
            "",
            true,
            own_host(source),
            dcm("RoleIDCode", "110153", "Source Role ID")};
    std::string called = str(d, "called_ae");
    if (called.empty()) called = "destination:" + str(d, "destination");
    to = {called,
          "",
          str(d, "destination"),
          false,
          str(d, "host"),
          dcm("RoleIDCode", "110152", "Destination Role ID")};
  }
  if (from.user_id.empty()) {
    from.user_id = received ? std::string("anonymous") : application_id(source);
  }

  std::vector<std::string> out;
  const auto message = [&](const Outcome& outcome,
                           const std::vector<std::pair<std::string, std::int64_t>>& classes) {
    std::string xml = event_identification(received ? "C" : "R", event.at_ms, outcome,
                                           dcm("EventID", "110104", "DICOM Instances Transferred"));
    xml += active_participant(from);
    xml += active_participant(to);
    xml += audit_source(source);
    if (!study.empty()) xml += study_object(study, classes);
    if (!patient_id.empty()) xml += patient_object(patient_id);
    out.push_back(wrap_message(event, source, outcome.indicator, xml));
  };
  if (ok > 0 || failed == 0) message({0, ""}, sop_class_counts(d, ok));
  if (failed > 0) {
    Outcome o{ok > 0 ? 4 : 8,
              fmt::format("{} instance(s) {}", failed, received ? "not stored" : "not delivered")};
    if (const auto error = str(d, "error"); !error.empty())
      o.description += ": " + clip(error, 256);
    message(o, {{"", failed}});
  }
  return out;
}

/// 110103 DICOM Instances Accessed: an instance read through the API.
std::vector<std::string> accessed(const index::AuditEvent& event, const DicomAuditSource& source,
                                  const std::string& patient_id) {
  const Json d = details_of(event);
  const std::string study = str(d, "study_instance_uid");
  const Outcome outcome{indicator_of(event.outcome), ""};
  std::string xml = event_identification("R", event.at_ms, outcome,
                                         dcm("EventID", "110103", "DICOM Instances Accessed"));
  xml += active_participant(
      {actor_id(event.actor), "", "", true, core::host_of_peer(event.peer_address), ""});
  xml += audit_source(source);
  if (!study.empty()) xml += study_object(study, {{str(d, "sop_class_uid"), 1}});
  if (!patient_id.empty()) xml += patient_object(patient_id);
  return {wrap_message(event, source, outcome.indicator, xml)};
}

/// 110114 User Authentication (login).
std::vector<std::string> authentication(const index::AuditEvent& event,
                                        const DicomAuditSource& source) {
  const Json d = details_of(event);
  std::string user = event.actor.starts_with("user:") ? actor_id(event.actor) : "";
  if (user.empty() && event.target.starts_with("user:")) user = event.target.substr(5);
  Outcome outcome{indicator_of(event.outcome), str(d, "reason")};
  std::string xml = event_identification("E", event.at_ms, outcome,
                                         dcm("EventID", "110114", "User Authentication"),
                                         dcm("EventTypeCode", "110122", "Login"));
  xml += active_participant({user, "", "", true, core::host_of_peer(event.peer_address), ""});
  xml += active_participant(
      {application_id(source), source.origin.procid, "", false, own_host(source), ""});
  xml += audit_source(source);
  return {wrap_message(event, source, outcome.indicator, xml)};
}

/// 110100 Application Activity (start, stop).
std::vector<std::string> application_activity(const index::AuditEvent& event,
                                              const DicomAuditSource& source, bool start) {
  const Outcome outcome{indicator_of(event.outcome), ""};
  std::string xml = event_identification(
      "E", event.at_ms, outcome, dcm("EventID", "110100", "Application Activity"),
      start ? dcm("EventTypeCode", "110120", "Application Start")
            : dcm("EventTypeCode", "110121", "Application Stop"));
  xml += active_participant({application_id(source), source.origin.procid, "dicom-gw", false,
                             own_host(source), dcm("RoleIDCode", "110150", "Application")});
  xml += audit_source(source);
  return {wrap_message(event, source, outcome.indicator, xml)};
}

/// 110113 Security Alert of the given type: who did it, and what it was done to.
std::vector<std::string> security_alert(const index::AuditEvent& event,
                                        const DicomAuditSource& source, std::string_view code,
                                        std::string_view meaning) {
  const Json d = details_of(event);
  std::string description = event.action;
  if (!event.target.empty()) description += " " + event.target;
  for (const char* key : {"reason", "message", "error"}) {
    if (auto why = str(d, key); !why.empty()) {
      description += ": " + why;
      break;
    }
  }
  description = clip(std::move(description), 512);
  const Outcome outcome{indicator_of(event.outcome), description};
  std::string xml =
      event_identification("E", event.at_ms, outcome, dcm("EventID", "110113", "Security Alert"),
                           dcm("EventTypeCode", code, meaning));
  const std::string app = application_id(source);
  if (event.actor == "system") {
    xml += active_participant({app, source.origin.procid, "", true, own_host(source), ""});
  } else {
    // The person or node that did it (a command-line user by their OS account), then this
    // gateway, which reports it.
    std::string who = actor_id(event.actor);
    if (event.actor == "cli" && !str(d, "os_user").empty()) who = str(d, "os_user");
    const std::string where =
        event.actor == "cli" ? own_host(source) : core::host_of_peer(event.peer_address);
    xml += active_participant({who, "", "", true, where, ""});
    xml += active_participant({app, source.origin.procid, "", false, own_host(source), ""});
  }
  xml += audit_source(source);
  if (event.target.starts_with("user:")) xml += user_object(event.target.substr(5));
  return {wrap_message(event, source, outcome.indicator, xml)};
}

}  // namespace

std::string audited_study(const index::AuditEvent& event) {
  if (event.action != "instances.received" && event.action != "instances.forwarded" &&
      event.action != "instance.downloaded") {
    return "";
  }
  return str(details_of(event), "study_instance_uid");
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = core::utf8_sequence(text);
    if (n == 0) {
      out += core::kUtf8Replacement;
      text.remove_prefix(1);
      continue;
    }
    if (n == 1) {
      const char c = text.front();
      const auto u = static_cast<unsigned char>(c);
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        case '\t':
          out += "&#9;";
          break;  // kept as characters in attribute values
        case '\n':
          out += "&#10;";
          break;
        case '\r':
          out += "&#13;";
          break;
        default:
          if (u < 0x20 || u == 0x7F) {
            out += core::kUtf8Replacement;
          } else {
            out += c;
          }
      }
    } else if (n == 3 && text.substr(0, 2) == "\xEF\xBF" &&
               (text[2] == '\xBE' || text[2] == '\xBF')) {
      out += core::kUtf8Replacement;  // U+FFFE, U+FFFF: not XML 1.0 characters
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

std::vector<std::string> format_dicom_audit_messages(const index::AuditEvent& event,
                                                     const DicomAuditSource& source,
                                                     const std::string& patient_id) {
  const std::string& a = event.action;
  if (a == "instances.received") return transferred(event, source, patient_id, true);
  if (a == "instances.forwarded") return transferred(event, source, patient_id, false);
  if (a == "instance.downloaded") return accessed(event, source, patient_id);
  if (a == "auth.login" || a == "auth.login_failed") return authentication(event, source);
  if (a == "gateway.started") return application_activity(event, source, true);
  if (a == "gateway.stopped") return application_activity(event, source, false);
  if (a == "association.rejected") {
    return security_alert(event, source, "110126", "Node Authentication");
  }
  if (a == "auth.denied" || a.starts_with("queue.")) {
    return security_alert(event, source, "110132", "Use of Restricted Function");
  }
  if (a.starts_with("user.") || a.starts_with("token.")) {
    return security_alert(event, source, "110137", "User Security Attributes Changed");
  }
  if (a == "config.reload")
    return security_alert(event, source, "110131", "Software Configuration");
  if (a.starts_with("destination.") && a != "destination.echo") {
    return security_alert(event, source, "110128", "Network Configuration");
  }
  if (a.starts_with("certs.") || a == "db.rotate_key") {
    return security_alert(event, source, "110129", "Security Configuration");
  }
  return {};
}

}  // namespace gw::audit
