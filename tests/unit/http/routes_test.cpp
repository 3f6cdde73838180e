// The resource routes through the Dispatcher, on an in-memory index: login and its rate limit,
// users, tokens, studies, queue, audit, status and metrics.
#include <algorithm>

#include "api_fixture.h"
#include "http/control.h"
#include "http/params.h"

namespace gw::http {
namespace {

using index::Role;

class RoutesTest : public ApiFixture {
 protected:
  Response login(const std::string& user, const std::string& password,
                 const std::string& client_ip = "10.0.0.1", const Json& ttl = nullptr) {
    Json body = {{"username", user}, {"password", password}};
    if (!ttl.is_null()) body["ttl"] = ttl;
    return post("/api/v1/auth/token", "", body, client_ip);
  }

  index::InstanceRecord record(const std::string& sop, const std::string& series,
                               const std::string& study, const std::string& patient_id,
                               const std::string& date, const std::string& modality = "CT") {
    index::InstanceRecord r;
    r.sop_instance_uid = sop;
    r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    r.size_bytes = 100;
    r.storage_path = "storage/" + sop;
    r.digest = std::string(64, 'a');
    r.received_at_ms = now_;
    r.series_instance_uid = series;
    r.modality = modality;
    r.study_instance_uid = study;
    r.study_date = date;
    r.patient_id = patient_id;
    r.patient_name = "Test^Patient";
    return r;
  }
};

// ---- login ----

TEST_F(RoutesTest, LoginIssuesAWorkingTokenAndAuditsIt) {
  add_user("alice", Role::kViewer);
  auto r = login("alice", kPassword);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json_of(r);
  EXPECT_EQ(body["token_type"], "Bearer");
  EXPECT_EQ(body["user"], "alice");
  EXPECT_EQ(body["expires_at"], format_time(now_ + 12 * 3600 * 1000));
  const std::string token = body["token"];
  EXPECT_TRUE(crypto::looks_like_api_token(token));
  EXPECT_EQ(get("/api/v1/studies", token).status, 200);
  auto logins = audit("auth.login");
  ASSERT_EQ(logins.size(), 1u);
  EXPECT_EQ(logins[0].actor, "user:alice");
  EXPECT_EQ(logins[0].target, "token:" + std::to_string(body["id"].get<std::int64_t>()));
  EXPECT_EQ(logins[0].peer_address, "10.0.0.1:40000");
}

TEST_F(RoutesTest, LoginTtlIsBounded) {
  add_user("alice", Role::kViewer);
  auto r = login("alice", kPassword, "10.0.0.1", "1h");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json_of(r)["expires_at"], format_time(now_ + 3600 * 1000));
  auto too_long = login("alice", kPassword, "10.0.0.1", "31d");
  EXPECT_EQ(too_long.status, 400);
  EXPECT_NE(json_of(too_long)["message"].get<std::string>().find("`ttl`"), std::string::npos);
}

TEST_F(RoutesTest, FailedLoginsLookAlikeAndAreAuditedWithoutThePassword) {
  add_user("alice", Role::kViewer);
  add_user("dora", Role::kViewer, /*disabled=*/true);
  const auto wrong = login("alice", "wrong password 1");
  const auto unknown = login("nobody", "wrong password 2");
  const auto disabled = login("dora", kPassword);
  for (const auto* r : {&wrong, &unknown, &disabled}) {
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->body, wrong.body);
  }
  auto failed = audit("auth.login_failed");
  ASSERT_EQ(failed.size(), 3u);
  for (const auto& e : failed) {
    EXPECT_EQ(e.outcome, "failed");
    EXPECT_EQ(e.details.find("wrong password"), std::string::npos);
    EXPECT_EQ(e.details.find(kPassword), std::string::npos);
  }
  EXPECT_EQ(failed.back().target, "user:alice");  // oldest last
  EXPECT_NE(failed.front().details.find("user_disabled"), std::string::npos);
}

TEST_F(RoutesTest, BruteForceIs429ButTheUserStillLogsInFromAnotherAddress) {
  add_user("admin", Role::kAdmin);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(login("admin", "guess " + std::to_string(i)).status, 401);
  auto blocked = login("admin", kPassword);  // even the right password, from there
  EXPECT_EQ(blocked.status, 429);
  EXPECT_EQ(json_of(blocked)["error"], "rate_limited");
  EXPECT_EQ(header_of(blocked, "Retry-After"), std::to_string(15 * 60));
  auto case_variant = login("ADMIN", "guess");
  EXPECT_EQ(case_variant.status, 429);  // names are case-insensitive, so is the count
  EXPECT_EQ(login("admin", kPassword, "10.0.0.2").status, 200);
  now_ += 15 * 60 * 1000;
  EXPECT_EQ(login("admin", kPassword).status, 200);
}

TEST_F(RoutesTest, LoginRefusesBadRequests) {
  EXPECT_EQ(post("/api/v1/auth/token", "", {{"username", "a"}}).status, 400);
  EXPECT_EQ(post("/api/v1/auth/token", "", {{"username", "a"}, {"password", 5}}).status, 400);
  EXPECT_EQ(post("/api/v1/auth/token", "", {{"username", std::string(65, 'a')}, {"password", "x"}})
                .status,
            400);
  EXPECT_EQ(call("POST", "/api/v1/auth/token", "", "username=a&password=b",
                 "application/x-www-form-urlencoded")
                .status,
            400);
}

// ---- users ----

TEST_F(RoutesTest, AdminsManageUsers) {
  const auto admin = add_token(add_user("ada", Role::kAdmin));
  auto created = post("/api/v1/users", admin,
                      {{"name", "olga"}, {"role", "operator"}, {"password", "a long password"}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(json_of(created)["role"], "operator");
  EXPECT_FALSE(json_of(created).contains("password_hash"));
  EXPECT_EQ(post("/api/v1/users", admin,
                 {{"name", "OLGA"}, {"role", "viewer"}, {"password", "a long password"}})
                .status,
            409);
  auto list = get("/api/v1/users", admin);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(json_of(list)["users"].size(), 2u);
  EXPECT_EQ(list.body.find("argon2"), std::string::npos);

  auto changed = call("PUT", "/api/v1/users/olga", admin,
                      Json({{"role", "viewer"}, {"password", "another long one"}}).dump());
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(json_of(changed)["role"], "viewer");
  EXPECT_EQ(login("olga", "another long one").status, 200);
  EXPECT_EQ(call("PUT", "/api/v1/users/nobody", admin, R"({"disabled":true})").status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/users/olga", admin).status, 204);
  EXPECT_EQ(call("DELETE", "/api/v1/users/olga", admin).status, 404);

  EXPECT_EQ(audit("user.create").size(), 1u);
  auto updates = audit("user.update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].actor, "user:ada");
  EXPECT_EQ(updates[0].details.find("another long one"), std::string::npos);
  EXPECT_EQ(audit("user.delete").size(), 1u);
}

TEST_F(RoutesTest, UserInputIsValidatedFieldByField) {
  const auto admin = add_token(add_user("ada", Role::kAdmin));
  auto message = [&](const Json& body) {
    auto r = post("/api/v1/users", admin, body);
    EXPECT_EQ(r.status, 400) << body.dump();
    return json_of(r)["message"].get<std::string>();
  };
  EXPECT_NE(
      message({{"name", "a b"}, {"role", "viewer"}, {"password", "long enough"}}).find("`name`"),
      std::string::npos);
  EXPECT_NE(
      message({{"name", "bob"}, {"role", "root"}, {"password", "long enough"}}).find("`role`"),
      std::string::npos);
  EXPECT_NE(
      message({{"name", "bob"}, {"role", "viewer"}, {"password", "short"}}).find("`password`"),
      std::string::npos);
  EXPECT_NE(message({{"name", "bob"}, {"role", "viewer"}, {"password", "long enough"}, {"x", 1}})
                .find("`x`"),
            std::string::npos);
}

TEST_F(RoutesTest, TheLastEnabledAdminCannotBeDemotedDisabledOrDeleted) {
  const auto ada = add_user("ada", Role::kAdmin);
  const auto token = add_token(ada);
  EXPECT_EQ(call("PUT", "/api/v1/users/ada", token, R"({"role":"viewer"})").status, 409);
  EXPECT_EQ(call("PUT", "/api/v1/users/ada", token, R"({"disabled":true})").status, 409);
  EXPECT_EQ(call("DELETE", "/api/v1/users/ada", token).status, 409);
  const auto bob = add_user("bob", Role::kAdmin);
  const auto bob_token = add_token(bob);
  EXPECT_EQ(call("DELETE", "/api/v1/users/ada", bob_token).status, 204);
  EXPECT_EQ(get("/api/v1/users", token).status, 401);  // a deleted user's token is dead
}

// ---- tokens ----

TEST_F(RoutesTest, UsersManageTheirOwnTokensAdminsEveryones) {
  const auto admin = add_token(add_user("ada", Role::kAdmin));
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  auto created = post("/api/v1/tokens", viewer, {{"ttl", "2h"}, {"description", "monitoring"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string token = json_of(created)["token"];
  const auto id = json_of(created)["id"].get<std::int64_t>();
  EXPECT_EQ(get("/api/v1/studies", token).status, 200);
  EXPECT_EQ(call("POST", "/api/v1/tokens", viewer).status, 201);  // empty body: defaults

  auto mine = json_of(get("/api/v1/tokens", viewer))["tokens"];
  EXPECT_EQ(mine.size(), 3u);
  for (const auto& t : mine) {
    EXPECT_EQ(t["user"], "vic");
    EXPECT_FALSE(t.contains("token_hash"));
  }
  EXPECT_EQ(json_of(get("/api/v1/tokens", admin))["tokens"].size(), 4u);

  std::int64_t admin_token_id = 0;
  add_token(*index_->find_user("ada").value(), 0, &admin_token_id);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + std::to_string(admin_token_id), viewer).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + std::to_string(id), viewer).status, 204);
  EXPECT_EQ(get("/api/v1/studies", token).status, 401);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + std::to_string(id), viewer).status, 204);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/abc", viewer).status, 400);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + std::to_string(admin_token_id), admin).status, 204);
  EXPECT_EQ(audit("token.create").size(), 2u);
  EXPECT_EQ(audit("token.revoke").size(), 2u);
  EXPECT_EQ(post("/api/v1/tokens", viewer, {{"ttl", "31d"}}).status, 400);
  EXPECT_EQ(post("/api/v1/tokens", viewer, {{"description", std::string(201, 'x')}}).status, 400);
}

TEST_F(RoutesTest, ATokenCannotMintOneThatOutlivesIt) {
  const auto vic = add_user("vic", Role::kViewer);
  const auto short_lived = add_token(vic, 10 * 60 * 1000);  // 10 minutes left
  auto created = post("/api/v1/tokens", short_lived, {{"ttl", "30d"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const auto new_id = json_of(created)["id"].get<std::int64_t>();
  EXPECT_EQ(json_of(created)["expires_at"], format_time(now_ + 10 * 60 * 1000));
  auto expiry_of = [&](std::int64_t id) {
    const auto tokens = index_->list_tokens(vic.id);
    if (!tokens.ok()) return std::int64_t{-2};
    for (const auto& t : *tokens) {
      if (t.id == id) return t.expires_at_ms;
    }
    return std::int64_t{-1};
  };
  EXPECT_EQ(expiry_of(new_id), now_ + 10 * 60 * 1000);
  // A shorter ttl than what is left is kept as asked.
  auto shorter = post("/api/v1/tokens", short_lived, {{"ttl", "1m"}});
  ASSERT_EQ(shorter.status, 201);
  EXPECT_EQ(expiry_of(json_of(shorter)["id"].get<std::int64_t>()), now_ + 60 * 1000);
  // A token that never expires caps nothing.
  const auto forever = add_token(vic, 0);
  auto long_lived = post("/api/v1/tokens", forever, {{"ttl", "30d"}});
  ASSERT_EQ(long_lived.status, 201);
  EXPECT_EQ(expiry_of(json_of(long_lived)["id"].get<std::int64_t>()),
            now_ + std::int64_t{30} * 86400 * 1000);
}

// ---- studies ----

TEST_F(RoutesTest, StudiesSeriesAndInstances) {
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  ASSERT_TRUE(index_
                  ->insert_instance(record("1.2.3.1", "1.2.3.10", "1.2.3.100", "P1", "20240501"),
                                    index::DuplicatePolicy::kKeepFirst)
                  .ok());
  ASSERT_TRUE(
      index_
          ->insert_instance(record("1.2.3.2", "1.2.3.20", "1.2.3.200", "P2", "20240601", "MR"),
                            index::DuplicatePolicy::kKeepFirst)
          .ok());
  auto all = get("/api/v1/studies", viewer);
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(json_of(all)["studies"].size(), 2u);
  auto by_patient = json_of(get("/api/v1/studies?patient_id=P1", viewer))["studies"];
  ASSERT_EQ(by_patient.size(), 1u);
  EXPECT_EQ(by_patient[0]["study_instance_uid"], "1.2.3.100");
  EXPECT_EQ(json_of(get("/api/v1/studies?study_date_from=2024-05-15", viewer))["studies"].size(),
            1u);
  EXPECT_EQ(json_of(get("/api/v1/studies?modality=MR", viewer))["studies"].size(), 1u);
  EXPECT_EQ(json_of(get("/api/v1/studies?limit=1&offset=1", viewer))["studies"].size(), 1u);
  for (const std::string bad :
       {"limit=0", "limit=1001", "offset=-1", "study_date_to=May", "sort=name"}) {
    auto r = get("/api/v1/studies?" + bad, viewer);
    EXPECT_EQ(r.status, 400) << bad;
    const std::string name = bad.substr(0, bad.find('='));
    EXPECT_NE(json_of(r)["message"].get<std::string>().find("`" + name + "`"), std::string::npos)
        << r.body;
  }
  EXPECT_EQ(json_of(get("/api/v1/studies/1.2.3.100", viewer))["instance_count"], 1);
  EXPECT_EQ(get("/api/v1/studies/1.2.3.999", viewer).status, 404);
  EXPECT_EQ(get("/api/v1/studies/not-a-uid", viewer).status, 400);
  auto series = json_of(get("/api/v1/studies/1.2.3.100/series", viewer));
  ASSERT_EQ(series["series"].size(), 1u);
  EXPECT_EQ(series["series"][0]["series_instance_uid"], "1.2.3.10");
  EXPECT_EQ(get("/api/v1/studies/1.2.3.999/series", viewer).status, 404);
  auto instance = json_of(get("/api/v1/instances/1.2.3.2", viewer));
  EXPECT_EQ(instance["modality"], "MR");
  EXPECT_FALSE(instance.contains("storage_path"));
  EXPECT_EQ(get("/api/v1/instances/1.2.3.3", viewer).status, 404);
}

// ---- queue ----

class FakeControl : public GatewayControl {
 public:
  GatewaySnapshot snapshot() const override { return snapshot_; }
  bool ingest_stopped() const override { return snapshot_.ingest.stopped; }
  void queue_changed(const std::string& destination) override { changed.push_back(destination); }
  GatewaySnapshot snapshot_;
  std::vector<std::string> changed;
};

TEST_F(RoutesTest, QueueListRetryDeleteWithConflictsAndAudit) {
  FakeControl control;
  ctx_->control = &control;
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  const auto op = add_token(add_user("olga", Role::kOperator));
  auto r1 = record("1.2.3.1", "1.2.3.10", "1.2.3.100", "P1", "20240501");
  r1.destinations = {"PACS"};
  auto r2 = record("1.2.3.2", "1.2.3.10", "1.2.3.100", "P1", "20240501");
  r2.destinations = {"PACS"};
  ASSERT_TRUE(index_->insert_instance(r1, index::DuplicatePolicy::kKeepFirst).ok());
  ASSERT_TRUE(index_->insert_instance(r2, index::DuplicatePolicy::kKeepFirst).ok());

  auto list = json_of(get("/api/v1/queue", viewer));
  ASSERT_EQ(list["items"].size(), 2u);
  EXPECT_EQ(list["items"][0]["state"], "pending");
  EXPECT_EQ(list["depths"][0]["pending"], 2);
  const auto first = list["items"][0]["id"].get<std::int64_t>();
  const auto second = list["items"][1]["id"].get<std::int64_t>();
  EXPECT_EQ(json_of(get("/api/v1/queue?state=dead", viewer))["items"].size(), 0u);
  EXPECT_EQ(get("/api/v1/queue?state=lost", viewer).status, 400);

  auto retried = call("POST", "/api/v1/queue/" + std::to_string(first) + "/retry", op);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(json_of(retried)["state"], "pending");
  EXPECT_EQ(control.changed, std::vector<std::string>{"PACS"});

  // A forwarder holds both rows now: retry and delete are conflicts.
  ASSERT_EQ(index_->claim_outbox("PACS", 10, "node/PACS", now_, 60'000)->size(), 2u);
  EXPECT_EQ(call("POST", "/api/v1/queue/" + std::to_string(first) + "/retry", op).status, 409);
  EXPECT_EQ(call("DELETE", "/api/v1/queue/" + std::to_string(second), op).status, 409);
  ASSERT_TRUE(index_->release_outbox_leases("node/PACS", now_).ok());
  EXPECT_EQ(call("DELETE", "/api/v1/queue/" + std::to_string(second), op).status, 204);
  EXPECT_EQ(call("DELETE", "/api/v1/queue/" + std::to_string(second), op).status, 404);
  EXPECT_EQ(call("POST", "/api/v1/queue/999/retry", op).status, 404);

  auto retries = audit("queue.retry");
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].actor, "user:olga");
  EXPECT_EQ(retries[0].target, "queue:" + std::to_string(first));
  EXPECT_EQ(audit("queue.delete").size(), 1u);
}

// ---- audit ----

TEST_F(RoutesTest, AuditTrailFilters) {
  const auto admin = add_token(add_user("ada", Role::kAdmin));
  add_user("alice", Role::kViewer);
  const auto t0 = now_;
  ASSERT_EQ(login("alice", kPassword).status, 200);
  now_ += 1000;
  ASSERT_EQ(login("alice", "nope nope").status, 401);
  now_ += 1000;
  post("/api/v1/users", admin, {{"name", "bob"}, {"role", "viewer"}, {"password", "long enough"}});

  auto events = [&](const std::string& query) {
    auto r = get("/api/v1/audit" + query, admin);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_of(r)["events"];
  };
  EXPECT_EQ(events("?action=auth.*").size(), 2u);
  EXPECT_EQ(events("?user=alice").size(), 1u);  // the login; the failure is anonymous
  EXPECT_EQ(events("?user=ada&action=user.create").size(), 1u);
  EXPECT_EQ(events("?since=" + std::to_string(t0 + 1000)).size(), 2u);
  EXPECT_EQ(events("?until=" + format_time(t0 + 1000)).size(), 1u);
  auto e = events("?action=user.create")[0];
  EXPECT_EQ(e["details"]["role"], "viewer");
  EXPECT_EQ(e["actor"], "user:ada");
  auto bad = get("/api/v1/audit?since=last-week", admin);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(json_of(bad)["message"].get<std::string>().find("`since`"), std::string::npos);
}

// ---- status and metrics ----

TEST_F(RoutesTest, StatusAndMetricsFromTheSnapshot) {
  FakeControl control;
  control.snapshot_.version = "0.1.0";
  control.snapshot_.started_at_ms = now_ - 5000;
  control.snapshot_.listeners = {{"plain", "127.0.0.1", 11112, false}};
  control.snapshot_.scp.associations_accepted = 3;
  DestinationSnapshot pacs;
  pacs.name = "PACS";
  pacs.paused = true;
  pacs.forwarded = 7;
  control.snapshot_.destinations = {pacs};
  control.snapshot_.tls_certificate = CertificateSnapshot{"CN=gw", "01", "2030-01-01", 42};
  ctx_->control = &control;
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  auto r = record("1.2.3.1", "1.2.3.10", "1.2.3.100", "P1", "20240501");
  r.destinations = {"PACS"};
  ASSERT_TRUE(index_->insert_instance(r, index::DuplicatePolicy::kKeepFirst).ok());

  auto status = json_of(get("/api/v1/status", viewer));
  EXPECT_EQ(status["uptime_s"], 5);
  EXPECT_EQ(status["listeners"][0]["port"], 11112);
  EXPECT_EQ(status["associations"]["accepted"], 3);
  EXPECT_EQ(status["queue"][0]["destination"], "PACS");
  EXPECT_EQ(status["queue"][0]["pending"], 1);
  EXPECT_EQ(status["queue"][0]["paused"], true);
  EXPECT_EQ(status["tls_certificate"]["days_until_expiry"], 42);
  EXPECT_EQ(status["instances"]["indexed"], 1);

  auto metrics = get("/api/v1/metrics", viewer);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  for (const char* line :
       {"# TYPE dicom_gw_associations_total counter\n",
        "dicom_gw_associations_total{outcome=\"accepted\"} 3\n",
        "dicom_gw_instances_forwarded_total{destination=\"PACS\"} 7\n",
        "dicom_gw_destination_paused{destination=\"PACS\"} 1\n",
        "dicom_gw_queue_depth{destination=\"PACS\",state=\"pending\"} 1\n",
        "dicom_gw_tls_certificate_days_until_expiry 42\n", "dicom_gw_ingest_stopped 0\n"}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << metrics.body;
  }
  EXPECT_EQ(status["status"], "ok");
  EXPECT_EQ(status["storage"]["ingest_stopped"], false);
}

TEST_F(RoutesTest, AStoppedIngestTurnsHealthAndStatusRed) {
  FakeControl control;
  control.snapshot_.ingest.shared_flush = true;
  ctx_->control = &control;
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  EXPECT_EQ(get("/health", "").status, 200);
  EXPECT_EQ(json_of(get("/api/v1/status", viewer))["storage"]["flush"], "shared");

  control.snapshot_.ingest.stopped = true;
  auto health = get("/health", "");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(json_of(health)["status"], "failing");
  auto status = json_of(get("/api/v1/status", viewer));
  EXPECT_EQ(status["status"], "failing");
  EXPECT_EQ(status["storage"]["ingest_stopped"], true);
  EXPECT_NE(get("/api/v1/metrics", viewer).body.find("dicom_gw_ingest_stopped 1\n"),
            std::string::npos);
}

// Below storage.min_free_mb the gateway is "degraded": it refuses new instances and goes on
// forwarding; /health stays up (a load balancer keeps it), /status and /metrics say why.
TEST_F(RoutesTest, BelowTheFreeSpaceReserveTheGatewayIsDegraded) {
  FakeControl control;
  control.snapshot_.ingest.min_free_bytes = 1024u << 20;
  control.snapshot_.ingest.below_reserve = true;
  control.snapshot_.ingest.refused_low_space = 3;
  ctx_->control = &control;
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  EXPECT_EQ(get("/health", "").status, 200);
  const auto status = json_of(get("/api/v1/status", viewer));
  EXPECT_EQ(status["status"], "degraded");
  EXPECT_EQ(status["storage"]["below_reserve"], true);
  EXPECT_EQ(status["storage"]["refused_low_space"], 3);
  EXPECT_EQ(status["storage"]["min_free_bytes"], 1024u << 20);
  const auto metrics = get("/api/v1/metrics", viewer).body;
  EXPECT_NE(metrics.find("dicom_gw_storage_below_reserve 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("dicom_gw_instances_refused_low_space_total 3\n"), std::string::npos);
}

}  // namespace
}  // namespace gw::http
