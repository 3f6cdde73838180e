#pragma once
/// Input checks every Index backend makes before it touches its database, the checks of values
/// it reads back, and the errors it reports when a write finds nothing to change. One copy, so
/// SQLite and PostgreSQL refuse the same input with the same code and message (the contract
/// suite asserts both).
///
/// What the schema itself enforces stays in each backend's SQL (audit details being a JSON
/// object, a row's state and lease owner at the moment of the update); only the error those
/// backends return for it is shared here.

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "index/auth.h"
#include "index/destinations.h"
#include "index/outbox.h"

namespace gw::index {

// ---- users, tokens, audit ----

/// kInvalidArgument "<what>: a user name is …" unless valid_user_name(name).
core::Status check_user_name(const std::string& name, const char* what);

/// A token about to be stored: its hash is 64 lower-case hex digits (anything else may be the
/// token itself, which must not reach the disk) and its expiry is not negative.
core::Status check_new_token(const ApiToken& token);

/// actor and action are set, outcome is "ok", "denied" or "failed". (That details is a JSON
/// object is checked by the backend's INSERT; audit_details_error() is what it then returns.)
core::Status check_audit(const AuditEvent& event);
core::Error audit_details_error();

/// A user's role as read back from the database: kDatabase "user <id>: unknown role '<text>'"
/// when the column holds something else.
core::Result<Role> stored_role(std::int64_t user_id, const std::string& text);

/// kInvalidArgument "<what>: negative limit or offset" for a negative page.
core::Status check_page(std::int64_t limit, std::int64_t offset, const char* what);

// ---- outbox ----

/// An empty owner is how a row says "nobody holds me", so it cannot take or give back a lease.
core::Status check_lease_owner(const std::string& owner, const char* what);
/// check_lease_owner, and a lease of a positive length.
core::Status check_lease(const std::string& owner, std::int64_t lease_ms, const char* what);
/// An outbox row's state as read back: kDatabase "outbox row <id>: unknown state '<text>'".
core::Result<OutboxState> stored_outbox_state(std::int64_t id, const std::string& text);
/// A destination an inserted instance is routed to has a name.
core::Status check_outbox_destination(const std::string& destination);

/// Why an update that names an outbox row changed nothing: kNotFound when the row is gone
/// (`exists` false), else kConflict "outbox row <id>: <conflict>".
core::Error outbox_unchanged_error(std::int64_t id, bool exists, const std::string& conflict);

/// finish_outbox_rows on either backend: `finish(row)` for each row inside a transaction that
/// `begun` reports opened and `commit()` closes. kConflict and kNotFound (outbox_unchanged_error)
/// are that row's answer; any other failure ends the batch and becomes every row's answer (the
/// caller's transaction rolls back, nothing changed).
template <class Finish, class Commit>
std::vector<core::Status> finish_each_in_transaction(std::span<const OutboxFinish> rows,
                                                     core::Status begun, Finish finish,
                                                     Commit commit) {
  std::vector<core::Status> out;
  out.reserve(rows.size());
  core::Status failed = std::move(begun);
  for (std::size_t i = 0; failed.ok() && i < rows.size(); ++i) {
    auto st = finish(rows[i]);
    const bool row_level = st.ok() || st.error().code == core::ErrorCode::kConflict ||
                           st.error().code == core::ErrorCode::kNotFound;
    if (row_level) {
      out.push_back(std::move(st));
    } else {
      failed = std::move(st);
    }
  }
  if (failed.ok()) failed = commit();
  if (!failed.ok()) return std::vector<core::Status>(rows.size(), failed);
  return out;
}

// ---- API destinations ----

/// A name, and a port in 1-65535 (the rest was validated by config::parse_destination).
core::Status check_destination(const ApiDestination& destination);
/// kConflict unless `force` when `queued` rows (pending or in flight) still name it.
core::Status check_destination_deletable(const std::string& stored_name, std::int64_t queued,
                                         bool force);

}  // namespace gw::index
