#include "app/user_commands.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/admin_index.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/log.h"
#include "crypto/password.h"
#include "crypto/token.h"

namespace gw::app {

namespace {

using index::ApiToken;
using index::AuditEvent;
using index::User;

constexpr std::int64_t kMaxTtlSeconds = 3650LL * 24 * 3600;
constexpr std::size_t kMaxDescription = 200;

std::string local_time(std::int64_t epoch_ms) {
  const auto t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) return std::to_string(epoch_ms);
  char text[32];
  return std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm) == 0 ? std::to_string(epoch_ms)
                                                                         : std::string(text);
}

int usage_error(const std::string& message, std::ostream& err) {
  err << "error: " << message << '\n';
  return 2;
}

std::optional<std::string> name_problem(const std::string& name) {
  if (index::valid_user_name(name)) return std::nullopt;
  return "--name '" + name + "': a user name is 1-64 characters of A-Z a-z 0-9 . _ @ -";
}

std::optional<std::string> add_usage_error(const UserAddArgs& args) {
  if (auto problem = name_problem(args.name)) return problem;
  if (!index::role_from_string(args.role)) {
    return "--role " + args.role + ": use admin, operator or viewer";
  }
  return std::nullopt;
}

std::optional<std::string> token_usage_error(const UserTokenArgs& args) {
  if (auto problem = name_problem(args.name)) return problem;
  if (!parse_ttl(args.ttl)) {
    return "--ttl " + args.ttl + ": use a number and a unit (90d, 12h, 30m, 45s; at most 3650d)" +
           ", or 0 for a token that never expires";
  }
  if (args.description.size() > kMaxDescription) {
    return std::string("--description: at most 200 characters");
  }
  for (char c : args.description) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return std::string("--description: no control characters");
    }
  }
  return std::nullopt;
}

std::optional<std::string> revoke_usage_error(const UserRevokeTokenArgs& args) {
  if (args.id <= 0) return std::string("--id: a token id (see `dicom-gw user list --tokens`)");
  return std::nullopt;
}

std::optional<std::string> delete_usage_error(const UserDeleteArgs& args) {
  return name_problem(args.name);
}

bool token_active(const ApiToken& t, std::int64_t now_ms) {
  return t.revoked_at_ms == 0 && (t.expires_at_ms == 0 || t.expires_at_ms > now_ms);
}

std::string token_state(const ApiToken& t, std::int64_t now_ms) {
  if (t.revoked_at_ms != 0) return "revoked";
  if (t.expires_at_ms != 0 && t.expires_at_ms <= now_ms) return "expired";
  return "active";
}

/// Columns padded to their widest cell; the last one is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

/// Echo off on the terminal while it lives; restored however the prompt ends.
class EchoOff {
 public:
  EchoOff() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the Enter key still ends the line visibly
    active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

core::Result<std::string> prompt_password(std::istream& in, const std::string& name) {
  EchoOff quiet;
  std::cerr << "New password for " << name << ": " << std::flush;
  GW_ASSIGN_OR_RETURN(auto first, read_password_line(in));
  std::cerr << "Repeat it: " << std::flush;
  GW_ASSIGN_OR_RETURN(auto second, read_password_line(in));
  if (first != second) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the passwords do not match");
  }
  return first;
}

namespace {

std::optional<std::string> password_problem(std::string_view password) {
  if (password.size() < crypto::kMinPasswordBytes) {
    return fmt::format("the password must have at least {} characters", crypto::kMinPasswordBytes);
  }
  if (password.size() > crypto::kMaxPasswordBytes) {
    return fmt::format("the password must have at most {} bytes", crypto::kMaxPasswordBytes);
  }
  return std::nullopt;
}

}  // namespace

core::Result<std::string> read_password_line(std::istream& in) {
  std::string line;
  if (!std::getline(in, line) && line.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "no password on standard input (one line expected)");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<std::int64_t> parse_ttl(std::string_view text) {
  if (text == "0") return 0;
  // A bare number is ambiguous for a token's lifetime (seconds? days?): a unit is required.
  if (!core::has_duration_unit(text) || text.front() < '0' || text.front() > '9') {
    return std::nullopt;
  }
  const auto seconds = core::parse_duration_seconds(text);
  if (!seconds || *seconds > kMaxTtlSeconds) return std::nullopt;
  return seconds;  // "0d" is 0: never expires, like "0"
}

int user_add(index::Index& index, const UserAddArgs& args, std::string_view password,
             std::int64_t now_ms, std::ostream& out, std::ostream& err) {
  if (auto usage = add_usage_error(args)) return usage_error(*usage, err);
  if (auto problem = password_problem(password)) return usage_error(*problem, err);
  auto hash = crypto::hash_password(password);
  if (!hash.ok()) return fail(hash.error(), err);

  User user;
  user.name = args.name;
  user.role = *index::role_from_string(args.role);
  user.password_hash = std::move(hash).value();
  user.created_at_ms = now_ms;
  user.updated_at_ms = now_ms;
  const AuditEvent event =
      cli_event("user.create", "user:" + args.name, {{"role", args.role}}, now_ms);
  auto id = index.create_user(user, &event);
  if (!id.ok()) {
    if (id.error().code == core::ErrorCode::kAlreadyExists) {
      err << "error: user " << args.name << " already exists\n";
      return 1;
    }
    return fail(id.error(), err);
  }
  out << "created user " << args.name << " (" << args.role << ", id " << *id << ")\n";
  return 0;
}

int user_token(index::Index& index, const UserTokenArgs& args, std::int64_t now_ms,
               std::ostream& out, std::ostream& err) {
  if (auto usage = token_usage_error(args)) return usage_error(*usage, err);
  const std::int64_t ttl_seconds = *parse_ttl(args.ttl);
  auto user = index.find_user(args.name);
  if (!user.ok()) return fail(user.error(), err);
  if (!user->has_value()) {
    err << "error: no user " << args.name << '\n';
    return 1;
  }
  if ((*user)->disabled) {
    err << "error: user " << (*user)->name << " is disabled\n";
    return 1;
  }
  auto token = crypto::new_api_token();
  if (!token.ok()) return fail(token.error(), err);

  ApiToken row;
  row.user_id = (*user)->id;
  row.token_hash = crypto::token_hash(*token);
  row.description =
      args.description.empty() ? std::string("created by dicom-gw user token") : args.description;
  row.created_at_ms = now_ms;
  row.expires_at_ms = ttl_seconds == 0 ? 0 : now_ms + ttl_seconds * 1000;
  // No target: the index fills in "token:<id>", known only once the row exists.
  const AuditEvent event = cli_event("token.create", "",
                                     {{"user", (*user)->name},
                                      {"expires_at_ms", row.expires_at_ms},
                                      {"description", row.description}},
                                     now_ms);
  auto id = index.create_token(row, &event);
  if (!id.ok()) return fail(id.error(), err);

  if (ttl_seconds == 0) {
    err << "warning: this token never expires; revoke it with `dicom-gw user revoke-token --id "
        << *id << "` when it is no longer needed\n";
  }
  err << "token " << *id << " for " << (*user)->name << " (" << index::to_string((*user)->role)
      << "), "
      << (row.expires_at_ms == 0 ? std::string("no expiry")
                                 : "expires " + local_time(row.expires_at_ms))
      << ". It is shown only now; keep it secret.\n";
  out << *token << '\n';
  return 0;
}

int user_list(index::Index& index, const UserListArgs& args, std::int64_t now_ms, std::ostream& out,
              std::ostream& err) {
  auto users = index.list_users();
  if (!users.ok()) return fail(users.error(), err);
  auto tokens = index.list_tokens(0);
  if (!tokens.ok()) return fail(tokens.error(), err);
  std::map<std::int64_t, std::string> names;
  for (const auto& u : *users) names[u.id] = u.name;

  if (args.tokens) {
    auto owner = [&](const ApiToken& t) {
      auto it = names.find(t.user_id);
      return it == names.end() ? "(deleted user " + std::to_string(t.user_id) + ")" : it->second;
    };
    if (args.json) {
      auto array = nlohmann::ordered_json::array();
      for (const auto& t : *tokens) {
        array.push_back({{"id", t.id},
                         {"user", owner(t)},
                         {"user_id", t.user_id},
                         {"description", t.description},
                         {"state", token_state(t, now_ms)},
                         {"created_at_ms", t.created_at_ms},
                         {"expires_at_ms", t.expires_at_ms},
                         {"revoked_at_ms", t.revoked_at_ms},
                         {"last_used_at_ms", t.last_used_at_ms}});
      }
      out << array.dump(2) << '\n';
      return 0;
    }
    if (tokens->empty()) {
      out << "no tokens\n";
      return 0;
    }
    std::vector<std::vector<std::string>> table = {
        {"ID", "USER", "STATE", "CREATED", "EXPIRES", "LAST USED", "DESCRIPTION"}};
    for (const auto& t : *tokens) {
      table.push_back(
          {std::to_string(t.id), owner(t), token_state(t, now_ms), local_time(t.created_at_ms),
           t.expires_at_ms == 0 ? "never" : local_time(t.expires_at_ms),
           t.last_used_at_ms == 0 ? "-" : local_time(t.last_used_at_ms), t.description});
    }
    print_table(table, out);
    return 0;
  }

  std::map<std::int64_t, std::int64_t> active;
  for (const auto& t : *tokens) {
    if (token_active(t, now_ms)) ++active[t.user_id];
  }
  if (args.json) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& u : *users) {
      array.push_back({{"id", u.id},
                       {"name", u.name},
                       {"role", index::to_string(u.role)},
                       {"disabled", u.disabled},
                       {"created_at_ms", u.created_at_ms},
                       {"updated_at_ms", u.updated_at_ms},
                       {"active_tokens", active[u.id]}});
    }
    out << array.dump(2) << '\n';
    return 0;
  }
  if (users->empty()) {
    out << "no users; create the first with: dicom-gw user add --name NAME --role admin\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table = {
      {"NAME", "ROLE", "DISABLED", "CREATED", "ACTIVE TOKENS"}};
  for (const auto& u : *users) {
    table.push_back({u.name, std::string(index::to_string(u.role)), u.disabled ? "yes" : "no",
                     local_time(u.created_at_ms), std::to_string(active[u.id])});
  }
  print_table(table, out);
  return 0;
}

int user_revoke_token(index::Index& index, const UserRevokeTokenArgs& args, std::int64_t now_ms,
                      std::ostream& out, std::ostream& err) {
  if (auto usage = revoke_usage_error(args)) return usage_error(*usage, err);
  // The index has no lookup by id; a CLI listing every token is cheap enough.
  auto tokens = index.list_tokens(0);
  if (!tokens.ok()) return fail(tokens.error(), err);
  auto it = std::find_if(tokens->begin(), tokens->end(),
                         [&](const ApiToken& t) { return t.id == args.id; });
  if (it == tokens->end()) {
    err << "error: no token " << args.id << '\n';
    return 1;
  }
  if (it->revoked_at_ms != 0) {
    out << "token " << args.id << " was already revoked at " << local_time(it->revoked_at_ms)
        << '\n';
    return 0;
  }
  const AuditEvent event = cli_event("token.revoke", "token:" + std::to_string(args.id),
                                     {{"user_id", it->user_id}}, now_ms);
  if (auto st = index.revoke_token(args.id, now_ms, &event); !st.ok()) {
    return fail(st.error(), err);
  }
  out << "token " << args.id << " revoked\n";
  return 0;
}

int user_delete(index::Index& index, const UserDeleteArgs& args, std::int64_t now_ms,
                std::ostream& out, std::ostream& err) {
  if (auto usage = delete_usage_error(args)) return usage_error(*usage, err);
  auto user = index.find_user(args.name);
  if (!user.ok()) return fail(user.error(), err);
  if (!user->has_value()) {
    err << "error: no user " << args.name << '\n';
    return 1;
  }
  const User& u = **user;
  auto tokens = index.list_tokens(u.id);
  if (!tokens.ok()) return fail(tokens.error(), err);
  const auto revoked = std::count_if(tokens->begin(), tokens->end(),
                                     [](const ApiToken& t) { return t.revoked_at_ms == 0; });
  const AuditEvent event = cli_event(
      "user.delete", "user:" + u.name,
      {{"id", u.id}, {"role", index::to_string(u.role)}, {"tokens_revoked", revoked}}, now_ms);
  if (auto st = index.delete_user(u.id, &event); !st.ok()) {
    if (st.error().code == core::ErrorCode::kNotFound) {
      err << "error: no user " << args.name << '\n';
      return 1;
    }
    return fail(st.error(), err);
  }
  out << "deleted user " << u.name << "; " << revoked << " token(s) revoked\n";
  return 0;
}

int user_passwd(index::Index& index, const UserPasswdArgs& args, std::string_view password,
                std::int64_t now_ms, std::ostream& out, std::ostream& err) {
  if (auto usage = name_problem(args.name)) return usage_error(*usage, err);
  if (auto problem = password_problem(password)) return usage_error(*problem, err);
  auto found = index.find_user(args.name);
  if (!found.ok()) return fail(found.error(), err);
  if (!found->has_value()) {
    err << "error: no user " << args.name << '\n';
    return 1;
  }
  User u = **found;
  auto hash = crypto::hash_password(password);
  if (!hash.ok()) return fail(hash.error(), err);
  u.password_hash = std::move(hash).value();
  nlohmann::ordered_json changes = {{"password", "changed"}};
  const bool enabling = args.enable && u.disabled;
  if (enabling) {
    u.disabled = false;
    changes["disabled"] = false;
  }
  u.updated_at_ms = now_ms;
  const AuditEvent event = cli_event("user.update", "user:" + u.name, changes, now_ms);
  if (auto st = index.update_user(u, &event, /*revoke_tokens=*/true); !st.ok())
    return fail(st.error(), err);
  out << "password of " << u.name << " changed" << (enabling ? "; the user is enabled again" : "")
      << (u.disabled ? "; the user is still disabled (--enable)" : "") << '\n'
      << "its API tokens were revoked: make new ones with `user token`\n";
  return 0;
}

// Usage is checked before the configuration is read: a typo should not be reported as a
// missing /etc/dicom-gw/config.yaml.

int run_user_add(const UserAddArgs& args, std::istream& in, bool terminal) {
  if (auto usage = add_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    // Before the password is typed: a taken name should not cost the operator a prompt.
    auto existing = index.find_user(args.name);
    if (!existing.ok()) return fail(existing.error(), std::cerr);
    if (existing->has_value()) {
      std::cerr << "error: user " << (*existing)->name << " already exists\n";
      return 1;
    }
    auto password = terminal ? prompt_password(in, args.name) : read_password_line(in);
    if (!password.ok()) return usage_error(password.error().message, std::cerr);
    const int rc = user_add(index, args, *password, core::wall_clock_ms(), std::cout, std::cerr);
    std::fill(password->begin(), password->end(), '\0');
    return rc;
  });
}

int run_user_passwd(const UserPasswdArgs& args, std::istream& in, bool terminal) {
  if (auto usage = name_problem(args.name)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    // Before the password is typed: an unknown name should not cost the operator a prompt.
    auto existing = index.find_user(args.name);
    if (!existing.ok()) return fail(existing.error(), std::cerr);
    if (!existing->has_value()) {
      std::cerr << "error: no user " << args.name << '\n';
      return 1;
    }
    auto password = terminal ? prompt_password(in, args.name) : read_password_line(in);
    if (!password.ok()) return usage_error(password.error().message, std::cerr);
    const int rc = user_passwd(index, args, *password, core::wall_clock_ms(), std::cout, std::cerr);
    std::fill(password->begin(), password->end(), '\0');
    return rc;
  });
}

int run_user_token(const UserTokenArgs& args) {
  if (auto usage = token_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    return user_token(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

int run_user_list(const UserListArgs& args) {
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    return user_list(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

int run_user_revoke_token(const UserRevokeTokenArgs& args) {
  if (auto usage = revoke_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    return user_revoke_token(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

int run_user_delete(const UserDeleteArgs& args) {
  if (auto usage = delete_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "user", [&](index::Index& index) {
    return user_delete(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

void add_user_commands(CLI::App& app, std::filesystem::path& config_path, UserCommands& c) {
  auto* user_cmd =
      app.add_subcommand("user", "API users and tokens: add, passwd, token, list, revoke");
  user_cmd->require_subcommand(1);
  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("--config,-c", config_path, "configuration file")->capture_default_str();
  };

  c.add_cmd = user_cmd->add_subcommand(
      "add", "create a user; the password is read from standard input (prompted on a terminal)");
  add_config(c.add_cmd);
  c.add_cmd->add_option("--name", c.add.name, "user name (A-Z a-z 0-9 . _ @ -)")->required();
  c.add_cmd->add_option("--role", c.add.role, "admin | operator | viewer")->required();

  c.passwd_cmd = user_cmd->add_subcommand(
      "passwd",
      "set a user's new password, read from standard input (prompted on a terminal); the way "
      "back in when no admin can log in");
  add_config(c.passwd_cmd);
  c.passwd_cmd->add_option("--name", c.passwd.name, "user name")->required();
  c.passwd_cmd->add_flag("--enable", c.passwd.enable, "also enable the user if it was disabled");

  c.token_cmd = user_cmd->add_subcommand(
      "token", "print a new API token for a user (only the token, on standard output)");
  add_config(c.token_cmd);
  c.token_cmd->add_option("--name", c.token.name, "user name")->required();
  c.token_cmd->add_option("--ttl", c.token.ttl, "lifetime: 90d, 12h, 30m; 0 = never expires")
      ->capture_default_str();
  c.token_cmd->add_option("--description", c.token.description, "what the token is for");

  c.list_cmd = user_cmd->add_subcommand("list", "users with their roles and active tokens");
  add_config(c.list_cmd);
  c.list_cmd->add_flag("--json", c.list.json, "print a JSON array");
  c.list_cmd->add_flag("--tokens", c.list.tokens, "list the tokens (with their ids) instead");

  c.revoke_token_cmd = user_cmd->add_subcommand("revoke-token", "revoke an API token by id");
  add_config(c.revoke_token_cmd);
  c.revoke_token_cmd->add_option("--id", c.revoke_token.id, "token id (see `user list --tokens`)")
      ->required();

  c.delete_cmd = user_cmd->add_subcommand("delete", "delete a user and revoke their tokens");
  add_config(c.delete_cmd);
  c.delete_cmd->add_option("--name", c.remove.name, "user name")->required();
}

std::optional<int> run_user_command(UserCommands& c, const std::filesystem::path& config_path) {
  if (c.add_cmd != nullptr && *c.add_cmd) {
    c.add.config = config_path;
    return run_user_add(c.add, std::cin, ::isatty(STDIN_FILENO) == 1);
  }
  if (c.passwd_cmd != nullptr && *c.passwd_cmd) {
    c.passwd.config = config_path;
    return run_user_passwd(c.passwd, std::cin, ::isatty(STDIN_FILENO) == 1);
  }
  if (c.token_cmd != nullptr && *c.token_cmd) {
    c.token.config = config_path;
    return run_user_token(c.token);
  }
  if (c.list_cmd != nullptr && *c.list_cmd) {
    c.list.config = config_path;
    return run_user_list(c.list);
  }
  if (c.revoke_token_cmd != nullptr && *c.revoke_token_cmd) {
    c.revoke_token.config = config_path;
    return run_user_revoke_token(c.revoke_token);
  }
  if (c.delete_cmd != nullptr && *c.delete_cmd) {
    c.remove.config = config_path;
    return run_user_delete(c.remove);
  }
  return std::nullopt;
}

}  // namespace gw::app
