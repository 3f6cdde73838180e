// The OpenPGP messages of crypto/openpgp_sym.h against a real PostgreSQL 15 with pgcrypto
// (ADR 010), both ways, over libpq: what the gateway writes into a bytea column is what
// `SELECT pgp_sym_decrypt(col, 'key')` returns, and what pgcrypto's pgp_sym_encrypt writes
// (its defaults and other options) the gateway reads; a wrong key fails on both sides.
//
// The passphrase here is a test constant of this interop proof only; the product never sends
// its key to the server (it encrypts and decrypts itself).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/openpgp_sym.h"
#include "support/postgres.h"

namespace gw::test {
namespace {

constexpr const char* kPassphrase = "pgcrypto-interop-test-passphrase-Vq8n3Lr0";
constexpr const char* kWrongPassphrase = "pgcrypto-interop-test-passphrase-Vq8n3Lr1";

using Bytes = std::vector<std::uint8_t>;

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

/// One parameter: text, or binary (a bytea's raw bytes).
struct Param {
  std::string value;
  bool binary = false;
};

/// A statement's outcome: the first row's first value (raw bytes when `binary_result`), or the
/// server's error message.
struct Outcome {
  bool ok = false;
  std::optional<std::string> value;  ///< nullopt: no row or NULL
  std::string error;
};

/// Random printable ASCII and two-byte UTF-8 characters, `n` bytes or one more.
std::string utf8_text(std::size_t n, unsigned seed) {
  std::string text;
  std::uint32_t x = seed * 2654435761u + 1;
  while (text.size() < n) {
    x = x * 1664525u + 1013904223u;
    if ((x >> 24) % 5 == 0) {
      text += "\xC3\xBC";  // ü
    } else {
      text.push_back(static_cast<char>('A' + (x >> 16) % 26));
    }
  }
  return text;
}

class PgcryptoInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string db = server_.create_database();
    conn_.reset(PQconnectdb(server_.url(db).c_str()));
    ASSERT_TRUE(conn_ && PQstatus(conn_.get()) == CONNECTION_OK)
        << (conn_ ? PQerrorMessage(conn_.get()) : "PQconnectdb");
    ASSERT_TRUE(exec("CREATE EXTENSION IF NOT EXISTS pgcrypto", {}).ok);
    ASSERT_TRUE(exec("CREATE TABLE vals (id integer PRIMARY KEY, enc bytea NOT NULL)", {}).ok);
  }

  Outcome exec(const std::string& sql, const std::vector<Param>& params,
               bool binary_result = false) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (const auto& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    PgResult r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                            values.data(), lengths.data(), formats.data(), binary_result ? 1 : 0));
    Outcome out;
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      out.error = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_.get());
      return out;
    }
    out.ok = true;
    if (status == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 && PQgetisnull(r.get(), 0, 0) == 0) {
      out.value = std::string(PQgetvalue(r.get(), 0, 0),
                              static_cast<std::size_t>(PQgetlength(r.get(), 0, 0)));
    }
    return out;
  }

  /// Stores `message` in row `id`: as a binary parameter, or as bytea hex text ("\x…").
  void store(int id, const Bytes& message, bool as_hex) {
    Param blob;
    if (as_hex) {
      static constexpr char kHex[] = "0123456789abcdef";
      blob.value = "\\x";
      for (auto b : message) {
        blob.value.push_back(kHex[b >> 4]);
        blob.value.push_back(kHex[b & 0xf]);
      }
    } else {
      blob.value.assign(message.begin(), message.end());
      blob.binary = true;
    }
    auto r = exec("INSERT INTO vals (id, enc) VALUES ($1::integer, $2::bytea)",
                  {Param{std::to_string(id), false}, blob});
    ASSERT_TRUE(r.ok) << r.error;
  }

  /// pgcrypto's pgp_sym_encrypt(text, key[, options]) as raw bytes.
  Bytes server_encrypt(const std::string& text, const std::string& options = "") {
    const std::string sql =
        options.empty() ? "SELECT pgp_sym_encrypt($1, $2)" : "SELECT pgp_sym_encrypt($1, $2, $3)";
    std::vector<Param> params{{text, false}, {kPassphrase, false}};
    if (!options.empty()) params.push_back({options, false});
    auto r = exec(sql, params, /*binary_result=*/true);
    EXPECT_TRUE(r.ok && r.value) << options << ": " << r.error;
    if (!r.value) return {};
    return Bytes(r.value->begin(), r.value->end());
  }

  PostgresServer& server_ = PostgresServer::shared();
  Conn conn_;
};

TEST_F(PgcryptoInterop, OurMessagesAreReadByPgSymDecrypt) {
  std::vector<std::string> texts = {"DOE^JANE", "Müller^Jürgen", "", "x", "李^小龍 — Ωμέγα ✓"};
  // Around the OpenPGP length classes of the literal packet and of the SEIPD packet (1-, 2-
  // and 5-octet lengths), and a long value.
  for (std::size_t n : {142u, 143u, 185u, 186u, 8377u, 8378u, 100000u}) {
    texts.push_back(utf8_text(n, static_cast<unsigned>(n)));
  }
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto message = crypto::pgp_sym_encrypt(texts[i], kPassphrase);
    ASSERT_TRUE(message.ok()) << message.error().message;
    store(static_cast<int>(i), *message, /*as_hex=*/i % 2 == 1);
    const Param id{std::to_string(i), false};
    auto plain = exec("SELECT pgp_sym_decrypt(enc, $1) FROM vals WHERE id = $2::integer",
                      {Param{kPassphrase, false}, id});
    ASSERT_TRUE(plain.ok) << "value " << i << ": " << plain.error;
    ASSERT_TRUE(plain.value);
    EXPECT_EQ(*plain.value, texts[i]) << "value " << i;

    auto wrong = exec("SELECT pgp_sym_decrypt(enc, $1) FROM vals WHERE id = $2::integer",
                      {Param{kWrongPassphrase, false}, id});
    EXPECT_FALSE(wrong.ok) << "value " << i;
    EXPECT_NE(wrong.error.find("Wrong key or corrupt data"), std::string::npos) << wrong.error;
  }
}

TEST_F(PgcryptoInterop, AnOperatorDecryptsInPlainSql) {
  // What ADR 010 promises: a literal key in SQL text, through psql.
  const std::string text = "Müller^Jürgen";
  auto message = crypto::pgp_sym_encrypt(text, kPassphrase);
  ASSERT_TRUE(message.ok());
  store(1, *message, /*as_hex=*/false);
  const auto db = std::string(PQdb(conn_.get()));
  auto r = server_.psql(
      db, std::string("SELECT pgp_sym_decrypt(enc, '") + kPassphrase + "') FROM vals WHERE id = 1");
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, text + "\n");
}

TEST_F(PgcryptoInterop, AlteredMessagesAreRefusedByPgcrypto) {
  auto message = crypto::pgp_sym_encrypt("DOE^JANE", kPassphrase);
  ASSERT_TRUE(message.ok());
  // A byte in the encrypted literal data, one in the MDC, and the last byte.
  const std::size_t positions[] = {message->size() - 30, message->size() - 10, message->size() - 1};
  for (std::size_t i = 0; i < std::size(positions); ++i) {
    Bytes changed = *message;
    changed[positions[i]] ^= 0x01;
    store(static_cast<int>(i), changed, false);
    auto r = exec("SELECT pgp_sym_decrypt(enc, $1) FROM vals WHERE id = $2::integer",
                  {Param{kPassphrase, false}, Param{std::to_string(i), false}});
    EXPECT_FALSE(r.ok) << "position " << positions[i];
  }
}

TEST_F(PgcryptoInterop, PgcryptoMessagesAreReadByOurs) {
  const std::vector<std::string> texts = {"DOE^JANE", "Müller^Jürgen", "", utf8_text(100000, 7)};
  // pgcrypto's defaults (iterated+salted SHA-1 S2K, AES-128, MDC, no compression) first.
  const std::vector<std::string> options = {"",
                                            "cipher-algo=aes256, s2k-digest-algo=sha256",
                                            "cipher-algo=aes192, s2k-mode=1",
                                            "s2k-mode=0",
                                            "unicode-mode=1",
                                            "s2k-count=65011712"};
  for (const auto& option : options) {
    for (const auto& text : texts) {
      if (option == "s2k-count=65011712" && text.size() > 100) continue;
      const Bytes message = server_encrypt(text, option);
      ASSERT_FALSE(message.empty()) << option;
      auto plain = crypto::pgp_sym_decrypt(message, kPassphrase);
      ASSERT_TRUE(plain.ok()) << "options '" << option << "', " << text.size()
                              << " bytes: " << plain.error().message;
      EXPECT_EQ(*plain, text) << option;

      auto wrong = crypto::pgp_sym_decrypt(message, kWrongPassphrase);
      ASSERT_FALSE(wrong.ok()) << option;
      EXPECT_EQ(wrong.error().code, core::ErrorCode::kDataLoss) << option;
      EXPECT_NE(wrong.error().message.find("wrong key or corrupted value"), std::string::npos);
    }
  }
}

TEST_F(PgcryptoInterop, WhatWeDoNotReadIsRefusedClearly) {
  // Compressed data and a message without MDC: refused, never returned as text.
  for (const char* option : {"compress-algo=1", "compress-algo=2", "disable-mdc=1", "sess-key=1"}) {
    const Bytes message = server_encrypt("DOE^JANE", option);
    ASSERT_FALSE(message.empty()) << option;
    auto plain = crypto::pgp_sym_decrypt(message, kPassphrase);
    ASSERT_FALSE(plain.ok()) << option;
    EXPECT_EQ(plain.error().code, core::ErrorCode::kUnsupported) << option;
  }
}

}  // namespace
}  // namespace gw::test
