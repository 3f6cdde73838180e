#pragma once
/// `dicom-gw user add|passwd|token|list|revoke-token|delete`: bootstrap API users and tokens from
/// the machine itself (there is no default account). Like `queue`, it opens the index alone, never
/// the data directory's lock, so it runs next to a live gateway. Every change is audited with
/// actor "cli" in the same transaction. Passwords come from standard input only (never argv,
/// which other local users can read in /proc); a new token is printed once and only its hash
/// is stored.
/// Exit codes: 0 done, 1 the operation failed (name taken, no such user or token), 2 usage or
/// configuration error.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "index/index.h"

namespace CLI {
class App;
}

namespace gw::app {

struct UserAddArgs {
  std::filesystem::path config;
  std::string name;
  std::string role;  ///< admin | operator | viewer
};

struct UserTokenArgs {
  std::filesystem::path config;
  std::string name;
  std::string ttl = "90d";  ///< "90d", "12h", "30m", "45s"; "0" = never expires
  std::string description;  ///< "" = "created by dicom-gw user token"
};

struct UserListArgs {
  std::filesystem::path config;
  bool json = false;    ///< a JSON array instead of the table
  bool tokens = false;  ///< list the tokens (ids for revoke-token) instead of the users
};

struct UserRevokeTokenArgs {
  std::filesystem::path config;
  std::int64_t id = 0;
};

struct UserDeleteArgs {
  std::filesystem::path config;
  std::string name;
};

struct UserPasswdArgs {
  std::filesystem::path config;
  std::string name;
  bool enable = false;  ///< also clear the user's disabled flag (an admin locked out)
};

/// Load the configuration, open its index and run the command; output on stdout/stderr.
/// `user add` reads the password from `in`: with `terminal`, it prompts twice on stderr with
/// echo off; otherwise it takes the first line.
int run_user_add(const UserAddArgs& args, std::istream& in, bool terminal);
int run_user_token(const UserTokenArgs& args);
int run_user_list(const UserListArgs& args);
int run_user_revoke_token(const UserRevokeTokenArgs& args);
int run_user_delete(const UserDeleteArgs& args);
int run_user_passwd(const UserPasswdArgs& args, std::istream& in, bool terminal);

/// The commands on an open index (what tests call). `now_ms`: Unix epoch milliseconds.
int user_add(index::Index& index, const UserAddArgs& args, std::string_view password,
             std::int64_t now_ms, std::ostream& out, std::ostream& err);
/// The token alone on `out`; everything else on `err`.
int user_token(index::Index& index, const UserTokenArgs& args, std::int64_t now_ms,
               std::ostream& out, std::ostream& err);
int user_list(index::Index& index, const UserListArgs& args, std::int64_t now_ms, std::ostream& out,
              std::ostream& err);
int user_revoke_token(index::Index& index, const UserRevokeTokenArgs& args, std::int64_t now_ms,
                      std::ostream& out, std::ostream& err);
int user_delete(index::Index& index, const UserDeleteArgs& args, std::int64_t now_ms,
                std::ostream& out, std::ostream& err);
/// Sets a new password (the recovery path when no admin can log in). Tokens stay valid: revoke
/// them with revoke-token if the account was compromised.
int user_passwd(index::Index& index, const UserPasswdArgs& args, std::string_view password,
                std::int64_t now_ms, std::ostream& out, std::ostream& err);

/// The first line of `in` without its line ending; kInvalidArgument when there is none.
core::Result<std::string> read_password_line(std::istream& in);
/// For a terminal on standard input: "New password for NAME: " and "Repeat it: " on stderr
/// with echo off; kInvalidArgument when the two differ. Also `pki export-p12`'s prompt.
core::Result<std::string> prompt_password(std::istream& in, const std::string& name);
/// A token lifetime in seconds: digits and a unit (s, m, h, d), or "0" for never. A bare
/// number other than 0 is refused (seconds or days?). nullopt when malformed or over 10 years.
std::optional<std::int64_t> parse_ttl(std::string_view text);

/// The `user` subcommands of the command line: their arguments and, once registered, which
/// CLI11 subcommand each one is.
struct UserCommands {
  UserAddArgs add;
  UserTokenArgs token;
  UserListArgs list;
  UserRevokeTokenArgs revoke_token;
  UserDeleteArgs remove;
  UserPasswdArgs passwd;
  CLI::App* add_cmd = nullptr;
  CLI::App* token_cmd = nullptr;
  CLI::App* list_cmd = nullptr;
  CLI::App* revoke_token_cmd = nullptr;
  CLI::App* delete_cmd = nullptr;
  CLI::App* passwd_cmd = nullptr;
};

/// Registers `user add|passwd|token|list|revoke-token|delete` on `app`; their --config binds to
/// `config_path` (shared with the other subcommands). `commands` must outlive parsing.
void add_user_commands(CLI::App& app, std::filesystem::path& config_path, UserCommands& commands);
/// After parsing: runs the `user` subcommand that was given with `config_path`, or nullopt.
std::optional<int> run_user_command(UserCommands& commands,
                                    const std::filesystem::path& config_path);

}  // namespace gw::app
