#pragma once
/// Byte streams a hostile or broken client might send to a DICOM acceptor, each a complete
/// PDU stream (6-byte header included) with a name for test output; a few start with a valid
/// A-ASSOCIATE-RQ to reach a later state. The e2e tests send each one
/// to the running gateway on a fresh connection and check that it answers with A-ABORT (or
/// closes) and keeps serving, except the tolerated_malformed_pdus() ones; unit tests feed them
/// to the parsers.
///
/// Self-contained on purpose (no gw_dicom dependency): the bytes are built here so a parser bug
/// cannot hide in the generator.

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::test {

namespace malformed_detail {

using Bytes = std::vector<std::uint8_t>;

inline void put(Bytes& b, std::initializer_list<std::uint8_t> bytes) {
  b.insert(b.end(), bytes.begin(), bytes.end());
}
inline void put(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }
inline void put_u16(Bytes& b, std::uint32_t v) {
  put(b, {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
}
inline void put_u32(Bytes& b, std::uint32_t v) {
  put(b, {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
}

/// An item with a correct length, or with `declared` written instead of the real length.
inline Bytes item(std::uint8_t type, const Bytes& value, long declared = -1) {
  Bytes b = {type, 0x00};
  put_u16(b, declared >= 0 ? static_cast<std::uint32_t>(declared)
                           : static_cast<std::uint32_t>(value.size()));
  b.insert(b.end(), value.begin(), value.end());
  return b;
}
inline Bytes str(std::string_view s) { return {s.begin(), s.end()}; }
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

/// A PDU with the given type and body; `declared` overrides the header's length field.
inline Bytes pdu(std::uint8_t type, const Bytes& body, long long declared = -1) {
  Bytes b = {type, 0x00};
  put_u32(b, declared >= 0 ? static_cast<std::uint32_t>(declared)
                           : static_cast<std::uint32_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

inline Bytes associate_fixed() {
  Bytes b = {0x00, 0x01, 0x00, 0x00};
  put(b, "GATEWAY         ");
  put(b, "HOSTILE         ");
  b.insert(b.end(), 32, 0x00);
  return b;
}

inline Bytes app_context() { return item(0x10, str("1.2.840.10008.3.1.1.1")); }
inline Bytes echo_context() {
  return item(0x20, cat({{0x01, 0x00, 0x00, 0x00},
                         item(0x30, str("1.2.840.10008.1.1")),
                         item(0x40, str("1.2.840.10008.1.2"))}));
}
inline Bytes user_info() {
  return item(
      0x50, cat({item(0x51, {0x00, 0x00, 0x40, 0x00}), item(0x52, str("1.2.826.0.1.3680043.10.1")),
                 item(0x55, str("HOSTILE_1"))}));
}
inline Bytes rq_body(std::initializer_list<Bytes> items) {
  Bytes b = associate_fixed();
  for (const Bytes& i : items) b.insert(b.end(), i.begin(), i.end());
  return b;
}
/// A valid A-ASSOCIATE-RQ body proposing Verification.
inline Bytes valid_rq_body() { return rq_body({app_context(), echo_context(), user_info()}); }

/// A valid P-DATA-TF carrying one command PDV (the start of a C-ECHO-RQ command set).
inline Bytes p_data_body() {
  Bytes pdv = {0x01, 0x03};  // context 1, command, last
  put(pdv, {0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00});
  Bytes b;
  put_u32(b, static_cast<std::uint32_t>(pdv.size()));
  b.insert(b.end(), pdv.begin(), pdv.end());
  return b;
}

}  // namespace malformed_detail

/// ~30 named malformed PDU streams. Every entry is something a conforming acceptor must refuse
/// (A-ABORT, A-ASSOCIATE-RJ or closing the connection) without crashing or allocating the
/// declared lengths.
inline std::vector<std::pair<std::string, std::vector<std::uint8_t>>> malformed_pdu_corpus() {
  using namespace malformed_detail;  // NOLINT(google-build-using-namespace): local builder DSL
  std::vector<std::pair<std::string, Bytes>> c;
  const Bytes valid_rq = valid_rq_body();

  // --- Truncation and lying lengths ---
  // Header promises the full body, only half arrives (the peer then goes quiet: ARTIM).
  c.emplace_back("rq_body_shorter_than_declared",
                 pdu(0x01, Bytes(valid_rq.begin(), valid_rq.begin() + valid_rq.size() / 2),
                     static_cast<long long>(valid_rq.size())));
  // Header length consistent with the bytes sent, but the last item is cut off.
  c.emplace_back("rq_cut_inside_user_information",
                 pdu(0x01, Bytes(valid_rq.begin(), valid_rq.end() - 7)));
  c.emplace_back("rq_only_header", pdu(0x01, {}, 0));
  const Bytes fixed = associate_fixed();
  c.emplace_back("rq_fixed_fields_truncated", pdu(0x01, Bytes(fixed.begin(), fixed.begin() + 20)));
  c.emplace_back("rq_pdu_length_0xffffffff", pdu(0x01, valid_rq, 0xFFFFFFFFLL));
  c.emplace_back("p_data_pdu_length_0x7fffffff", pdu(0x04, p_data_body(), 0x7FFFFFFFLL));
  c.emplace_back("rq_application_context_length_beyond_pdu",
                 pdu(0x01, rq_body({item(0x10, str("1.2.840.10008.3.1.1.1"), 0xFFFF)})));
  c.emplace_back("rq_presentation_context_length_beyond_pdu",
                 pdu(0x01, rq_body({app_context(), item(0x20, {0x01, 0x00, 0x00, 0x00}, 0x1000),
                                    user_info()})));
  c.emplace_back("rq_user_information_length_beyond_pdu",
                 pdu(0x01, rq_body({app_context(), echo_context(),
                                    item(0x50, item(0x51, {0x00, 0x00, 0x40, 0x00}), 0xFFF0)})));
  c.emplace_back("rq_abstract_syntax_length_beyond_context",
                 pdu(0x01, rq_body({app_context(),
                                    item(0x20, cat({{0x01, 0x00, 0x00, 0x00},
                                                    item(0x30, str("1.2.840.10008.1.1"), 0x0400),
                                                    item(0x40, str("1.2.840.10008.1.2"))})),
                                    user_info()})));
  c.emplace_back(
      "rq_max_length_sub_item_wrong_size",
      pdu(0x01, rq_body({app_context(), echo_context(), item(0x50, item(0x51, {0x00, 0x40}))})));
  c.emplace_back(
      "rq_role_selection_uid_length_beyond_sub_item",
      pdu(0x01, rq_body({app_context(), echo_context(),
                         item(0x50, cat({item(0x51, {0x00, 0x00, 0x40, 0x00}),
                                         item(0x54, {0xFF, 0xFF, '1', 0x01, 0x01})}))})));
  c.emplace_back(
      "rq_user_identity_field_length_beyond_sub_item",
      pdu(0x01,
          rq_body({app_context(), echo_context(),
                   item(0x50, cat({item(0x51, {0x00, 0x00, 0x40, 0x00}),
                                   item(0x58, {0x02, 0x00, 0xFF, 0xFF, 'u', 's', 'e', 'r'})}))})));
  // Every nested length claims the maximum: a parser that trusts any of them over-reads or
  // allocates 4 GiB.
  c.emplace_back(
      "nested_length_bomb",
      pdu(0x01,
          rq_body({app_context(),
                   item(0x20,
                        cat({{0x01, 0x00, 0x00, 0x00},
                             item(0x30, item(0x40, item(0x30, {}, 0xFFFF), 0xFFFF), 0xFFFF)}),
                        0xFFFF),
                   item(0x50, item(0x51, {}, 0xFFFF), 0xFFFF)}),
          0xFFFFFFFFLL));

  // --- Missing mandatory items ---
  c.emplace_back("rq_no_transfer_syntax",
                 pdu(0x01, rq_body({app_context(),
                                    item(0x20, cat({{0x01, 0x00, 0x00, 0x00},
                                                    item(0x30, str("1.2.840.10008.1.1"))})),
                                    user_info()})));
  c.emplace_back("rq_no_abstract_syntax",
                 pdu(0x01, rq_body({app_context(),
                                    item(0x20, cat({{0x01, 0x00, 0x00, 0x00},
                                                    item(0x40, str("1.2.840.10008.1.2"))})),
                                    user_info()})));
  c.emplace_back("rq_no_application_context", pdu(0x01, rq_body({echo_context(), user_info()})));
  c.emplace_back("rq_no_user_information", pdu(0x01, rq_body({app_context(), echo_context()})));

  // --- Wrong PDU for the state (acceptor in Sta2) ---
  c.emplace_back("p_data_before_association", pdu(0x04, p_data_body()));
  c.emplace_back("release_rq_before_association", pdu(0x05, {0x00, 0x00, 0x00, 0x00}));
  c.emplace_back("associate_ac_sent_to_acceptor", pdu(0x02, valid_rq));
  c.emplace_back("associate_rj_sent_to_acceptor", pdu(0x03, {0x00, 0x01, 0x01, 0x01}));
  {
    // A valid RQ, then a second RQ on the same association (Sta6 + Evt6).
    Bytes twice = pdu(0x01, valid_rq);
    const Bytes again = pdu(0x01, valid_rq);
    twice.insert(twice.end(), again.begin(), again.end());
    c.emplace_back("two_associate_rqs", std::move(twice));
  }

  // --- Broken P-DATA-TF / fixed-size PDUs ---
  // After a valid A-ASSOCIATE-RQ, so that the acceptor is in Sta6 and the P-DATA-TF reaches
  // the PDV parser (before association it is refused for its type alone).
  const Bytes associated = pdu(0x01, valid_rq);
  c.emplace_back("p_data_zero_length_pdv", cat({associated, pdu(0x04, {0x00, 0x00, 0x00, 0x00})}));
  c.emplace_back("p_data_pdv_length_one",
                 cat({associated, pdu(0x04, {0x00, 0x00, 0x00, 0x01, 0x01})}));
  c.emplace_back("p_data_pdv_length_0xffffffff",
                 cat({associated, pdu(0x04, {0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x03, 0x00, 0x00})}));
  c.emplace_back("p_data_empty", pdu(0x04, {}));
  c.emplace_back("abort_short_body", pdu(0x07, {0x00, 0x00}));

  // --- Not DICOM at all ---
  c.emplace_back("unknown_pdu_type_0x09", pdu(0x09, {0x00, 0x00, 0x00, 0x00}));
  c.emplace_back("pdu_type_0x00", pdu(0x00, {0x00, 0x00, 0x00, 0x00}));
  c.emplace_back("garbage_bytes", Bytes{0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0xFF, 0x13, 0x37, 0x42, 0x99,
                                        0x01, 0x80, 0x7F, 0x55, 0xAA, 0x10});
  c.emplace_back("http_get", str("GET / HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"));
  // The start of a TLS 1.0-record ClientHello, as a TLS client talking to a plain port sends.
  c.emplace_back("tls_client_hello_start",
                 Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0x5A,
                       0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A});
  return c;
}

/// Corpus entries whose only defect is in a part the acceptor may reject or ignore on its own
/// (PS3.8 9.3.2.2, PS3.7 D.3.3.4/D.3.3.7): a presentation context item without a transfer
/// syntax or abstract syntax (that context is rejected), an optional user information sub-item
/// whose fields do not fit it (skipped). Every length still fits its enclosing item, so the
/// PDU parses and the association goes ahead without them.
inline const std::set<std::string>& tolerated_malformed_pdus() {
  static const std::set<std::string> names = {"rq_no_transfer_syntax", "rq_no_abstract_syntax",
                                              "rq_role_selection_uid_length_beyond_sub_item",
                                              "rq_user_identity_field_length_beyond_sub_item"};
  return names;
}

}  // namespace gw::test
