#include "app/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/app.h"
#include "app/db_commands.h"
#include "app/demo.h"
#include "app/encryption.h"
#include "app/pki_commands.h"
#include "app/queue_commands.h"
#include "app/scu_commands.h"
#include "app/storage_commands.h"
#include "app/user_commands.h"
#include "audit/syslog_export.h"
#include "config/config.h"
#include "core/log.h"
#include "http/server.h"
#include "index/open.h"
#include "queue/destination_scu.h"
#include "queue/routing.h"
#include "tls/context.h"

namespace gw::app {

namespace {

constexpr const char* kDefaultConfig = "/etc/dicom-gw/config.yaml";

int serve(const std::filesystem::path& config_path) {
  auto config = config::load_config(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "configuration error in %s:\n%s\n", config_path.c_str(),
                 config.error().message.c_str());
    return 2;
  }
  core::init_logging(config->logging.level);
  auto app = App::create(std::move(config).value());
  if (!app.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", app.error().message.c_str());
    return core::exit_code(app.error().code);
  }
  return (*app)->run();
}

/// An issue from an error whose message starts with the key it is about ("tls.key_file: …",
/// "destinations[0].tls_key_path: …"): that key becomes the path; otherwise `path`.
config::ConfigIssue issue_of(const std::string& path, const std::string& message) {
  const auto colon = message.find(": ");
  if (colon != std::string::npos && message.starts_with(path) && message.find(' ') > colon) {
    return {message.substr(0, colon), message.substr(colon + 2)};
  }
  return {path, message};
}

/// What `serve` checks when it starts, short of opening the index and the ports: the route tag
/// keywords (DCMTK's dictionary), every TLS context (OpenSSL: files, key matches certificate,
/// key strength, ciphers), the encryption keys and the database password file. The same
/// functions as the start, every problem at once.
void check_like_start(const config::Config& config, std::vector<config::ConfigIssue>& issues,
                      std::vector<std::string>& warnings) {
  std::vector<config::ConfigIssue> found;
  if (auto routing = queue::RoutingTable::compile(config, &found); !routing.ok()) {
    if (found.empty()) found.push_back({"routes", routing.error().message});
    issues.insert(issues.end(), found.begin(), found.end());
  }
  auto add_warnings = [&](const std::string& prefix, const tls::TlsContext& context) {
    for (const auto& w : context.warnings()) warnings.push_back(prefix + w);
  };
  if (config.tls.enabled) {
    auto context = tls::make_server_context(config.tls);
    if (context.ok()) {
      add_warnings("", **context);
    } else {
      issues.push_back(issue_of("tls", context.error().message));
    }
  }
  if (config.http.enabled && config.http.tls.enabled) {
    auto context = tls::make_server_context(http::https_tls_config(config.http.tls));
    if (context.ok()) {
      add_warnings("http.tls: ", **context);
    } else {
      auto issue = issue_of("tls", context.error().message);  // the server context's key names
      issue.path = "http." + issue.path;
      issues.push_back(std::move(issue));
    }
  }
  for (std::size_t i = 0; i < config.destinations.size(); ++i) {
    const auto& d = config.destinations[i];
    if (!d.tls_enabled) continue;
    const std::string path = "destinations[" + std::to_string(i) + "]";
    dicom::ScuTlsOptions t = queue::destination_tls_options(d);
    t.cert_name = path + ".tls_cert_path";
    t.key_name = path + ".tls_key_path";
    t.ca_name = path + ".tls_ca_path";
    auto context = t.make_context();
    if (context.ok()) {
      add_warnings(path + ": ", **context);
    } else {
      issues.push_back(issue_of(path, context.error().message));
    }
  }
  if (config.audit.syslog.enabled && config.audit.syslog.tls) {
    auto context =
        audit::SyslogExporter::client_context(audit::SyslogExportOptions::from_config(config));
    if (!context.ok()) issues.push_back({"audit.syslog", context.error().message});
  }
  if (auto keys = read_keys(config.database, config.storage.encrypt); !keys.ok()) {
    constexpr std::string_view kEncrypt = "storage.encrypt ";  // "storage.encrypt needs a key"
    const std::string& message = keys.error().message;
    if (message.starts_with(kEncrypt)) {
      issues.push_back({"storage.encrypt", message.substr(kEncrypt.size())});
    } else {
      issues.push_back({"database", message});
    }
  }
  if (index::is_postgres_url(config.database.url) && !config.database.password_file.empty()) {
    if (auto password = index::read_password_file(config.database.password_file); !password.ok()) {
      issues.push_back(issue_of("database", password.error().message));
    }
  }
}

/// `config check`: every problem with its key path on stderr, exit code 2; else a summary.
int config_check(const std::filesystem::path& config_path) {
  std::vector<config::ConfigIssue> issues;
  std::vector<std::string> warnings;
  auto config = config::load_config(config_path, &issues);
  if (!config.ok()) {
    if (issues.empty()) issues.push_back({"", config.error().message});
  } else {
    check_like_start(*config, issues, warnings);
  }
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!issues.empty()) {
    std::fprintf(stderr, "%s: %zu problem(s)\n", config_path.c_str(), issues.size());
    for (const auto& i : issues) {
      if (i.path.empty()) {
        std::fprintf(stderr, "  %s\n", i.message.c_str());
      } else {
        std::fprintf(stderr, "  %s: %s\n", i.path.c_str(), i.message.c_str());
      }
    }
    return 2;
  }
  std::printf("%s: OK (%zu listener(s), %zu destination(s), %zu route(s))\n", config_path.c_str(),
              config->listeners.size(), config->destinations.size(), config->routes.size());
  return 0;
}

/// `--tls --cert F --key F --ca F [--no-verify] [--no-verify-hostname] [--profile P]`.
struct TlsFlags {
  bool tls = false;
  std::filesystem::path cert, key, ca;
  bool no_verify = false;
  bool no_verify_hostname = false;
  std::string profile = "bcp195-rfc8996";
};

void add_tls_options(CLI::App* cmd, TlsFlags& f) {
  cmd->add_flag("--tls", f.tls, "DICOM TLS (port 2762 by convention)");
  cmd->add_option("--cert", f.cert, "our certificate (PEM, chain may follow) for mutual TLS");
  cmd->add_option("--key", f.key, "its private key (PEM, unencrypted)");
  cmd->add_option("--ca", f.ca, "CA bundle that signs the peer's certificate");
  cmd->add_flag("--no-verify", f.no_verify, "do not verify the peer's certificate (unsafe)");
  cmd->add_flag("--no-verify-hostname", f.no_verify_hostname,
                "verify the certificate chain but not that it names HOST");
  cmd->add_option("--profile", f.profile, "bcp195-rfc8996 | bcp195-nd | bcp195-extended | modern")
      ->capture_default_str();
}

/// Fills scu.tls from the flags and builds the client context once (shared by every
/// association). Returns an exit code on error (2: usage or unusable files), else -1.
int apply_tls(const TlsFlags& f, dicom::ScuOptions& scu) {
  if (!f.tls) {
    if (!f.cert.empty() || !f.key.empty() || !f.ca.empty() || f.no_verify || f.no_verify_hostname) {
      std::fprintf(stderr, "error: --cert/--key/--ca/--no-verify need --tls\n");
      return 2;
    }
    return -1;
  }
  dicom::ScuTlsOptions t;
  auto profile = tls::parse_profile(f.profile);
  if (!profile) {
    std::fprintf(stderr,
                 "error: --profile %s: use bcp195-rfc8996, bcp195-nd, bcp195-extended or "
                 "modern\n",
                 f.profile.c_str());
    return 2;
  }
  t.profile = *profile;
  t.cert = f.cert;
  t.key = f.key;
  t.ca = f.ca;
  t.no_verify = f.no_verify;
  t.verify_hostname = !f.no_verify_hostname;
  auto context = t.make_context();
  if (!context.ok()) {
    std::fprintf(stderr, "error: %s\n", context.error().message.c_str());
    return core::exit_code(context.error().code);
  }
  for (const auto& w : (*context)->warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
  t.context = std::move(context).value();
  scu.tls = std::move(t);
  return -1;
}

void add_scu_options(CLI::App* cmd, dicom::ScuOptions& scu, int& timeout_s, TlsFlags& tls) {
  add_tls_options(cmd, tls);
  cmd->add_option("--aet,--calling-ae", scu.calling_ae, "calling AE title")->capture_default_str();
  cmd->add_option("--aec,--called-ae", scu.called_ae, "called AE title")->capture_default_str();
  cmd->add_option("--max-pdu", scu.max_pdu_length,
                  "maximum PDU length we receive, in the range of the config's "
                  "limits.max_pdu_length (DCMTK's 0, \"unlimited\", is refused)")
      ->check(CLI::Range(config::kMinMaxPduLength, config::kMaxMaxPduLength))
      ->capture_default_str();
  cmd->add_option("--timeout", timeout_s, "seconds to wait for connect/association/response")
      ->capture_default_str();
  cmd->add_option("host", scu.host, "peer host name or address")->required();
  cmd->add_option("port", scu.port, "peer port")->required();
}

void apply_timeout(dicom::ScuOptions& scu, int timeout_s) {
  const auto t = std::chrono::seconds(std::max(1, timeout_s));
  scu.connect_timeout = t;
  scu.association_timeout = t;
  scu.response_timeout = std::max<dicom::Clock::duration>(t, std::chrono::seconds(60));
}

}  // namespace

int run_cli(int argc, char** argv) {
  core::init_logging("info");
  CLI::App app{"dicom-gw: a secure DICOM gateway (Storage SCP, store-and-forward, DICOM TLS)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dicom-gw 0.1.0");

  std::filesystem::path config_path = kDefaultConfig;
  auto* serve_cmd = app.add_subcommand("serve", "run the gateway daemon");
  serve_cmd->add_option("--config,-c", config_path, "configuration file")->capture_default_str();

  DemoArgs demo;
  auto* demo_cmd =
      app.add_subcommand("demo", "create a demo configuration in a directory and serve");
  demo_cmd->add_option("--dir", demo.dir, "demo directory")->capture_default_str();
  demo_cmd->add_option("--port", demo.port, "plain DICOM port")->capture_default_str();
  demo_cmd->add_option("--tls-port", demo.tls_port, "DICOM TLS port")->capture_default_str();
  demo_cmd->add_option("--http-port", demo.http_port, "REST API port (127.0.0.1)")
      ->capture_default_str();
  demo_cmd->add_flag("!--no-serve", demo.serve, "only create the files");

  auto* config_cmd = app.add_subcommand("config", "configuration tools");
  config_cmd->require_subcommand(1);
  auto* check_cmd = config_cmd->add_subcommand("check", "validate a configuration file");
  check_cmd->add_option("--config,-c", config_path, "configuration file")->capture_default_str();

  EchoArgs echo;
  echo.scu.called_ae = "ANY-SCP";
  int echo_timeout = 30;
  TlsFlags echo_tls;
  auto* echo_cmd = app.add_subcommand("echo", "C-ECHO a DICOM peer (like echoscu)");
  add_scu_options(echo_cmd, echo.scu, echo_timeout, echo_tls);
  echo_cmd->add_option("--repeat", echo.repeat, "number of C-ECHOs (at least 1)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();

  SendArgs send;
  int send_timeout = 30;
  TlsFlags send_tls;
  auto* send_cmd = app.add_subcommand(
      "send", "C-STORE files to a DICOM peer, data sets byte-for-byte (like storescu)");
  add_scu_options(send_cmd, send.scu, send_timeout, send_tls);
  send_cmd->add_option("files", send.inputs, "files or directories (recursed)")->required();
  send_cmd->add_option("--report", send.report, "write one line per instance to this file");
  send_cmd->add_flag("!--no-progress", send.progress, "no progress bar");
  send_cmd->add_option("--parallel,-j", send.parallel, "associations in parallel")
      ->capture_default_str();
  send_cmd
      ->add_option("--async", send.scu.async_operations,
                   "C-STOREs outstanding at once per association: proposes an asynchronous "
                   "operations window (the peer may grant fewer; 1 = synchronous)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();

  auto* pki_cmd =
      app.add_subcommand("pki", "a small site PKI: CA, server/client certificates, PKCS#12");
  pki_cmd->require_subcommand(1);
  PkiInitArgs pki_init;
  auto* pki_init_cmd =
      pki_cmd->add_subcommand("init", "create a root CA (and optionally an intermediate)");
  pki_init_cmd->add_option("--dir", pki_init.dir, "CA directory (0750; keys 0600)")->required();
  pki_init_cmd->add_option("--cn", pki_init.ca.common_name, "root CA common name")
      ->capture_default_str();
  pki_init_cmd->add_option("--org", pki_init.ca.organization, "organization (O=)");
  pki_init_cmd->add_option("--days", pki_init.ca.days, "validity in days")->capture_default_str();
  pki_init_cmd->add_flag("--intermediate", pki_init.ca.with_intermediate,
                         "also create an intermediate CA that issues the leaves");
  pki_init_cmd->add_option("--key", pki_init.key_type, "ec-p256 | rsa-3072 | rsa-2048")
      ->capture_default_str();
  pki_init_cmd->add_flag("--force", pki_init.ca.overwrite, "replace an existing CA");

  PkiIssueArgs pki_issue;
  auto* pki_issue_cmd = pki_cmd->add_subcommand("issue", "issue a server or client certificate");
  pki_issue_cmd->add_option("--ca", pki_issue.ca_dir, "CA directory made by `pki init`")
      ->required();
  pki_issue_cmd->add_option("--cn", pki_issue.issue.common_name, "common name")->required();
  pki_issue_cmd->add_option("--kind", pki_issue.kind, "server | client | both")
      ->capture_default_str();
  bool as_server = false;
  bool as_client = false;
  pki_issue_cmd->add_flag("--server", as_server, "same as --kind server");
  pki_issue_cmd->add_flag("--client", as_client, "same as --kind client");
  pki_issue_cmd->add_option("--san", pki_issue.sans, "subject alternative names: DNS:a,IP:1.2.3.4");
  pki_issue_cmd->add_option("--org", pki_issue.issue.organization, "organization (O=)");
  pki_issue_cmd->add_option("--days", pki_issue.issue.days, "validity in days")
      ->capture_default_str();
  pki_issue_cmd->add_option("--key", pki_issue.key_type, "ec-p256 | rsa-3072 | rsa-2048")
      ->capture_default_str();
  pki_issue_cmd->add_option("--out-cert", pki_issue.issue.out_cert,
                            "certificate file (default CN.pem)");
  pki_issue_cmd->add_option("--out-key", pki_issue.issue.out_key,
                            "private key file (default CN.key)");
  pki_issue_cmd->add_flag("--chain", pki_issue.issue.include_chain_in_cert,
                          "append the intermediate to the certificate file");
  pki_issue_cmd->add_flag("--force", pki_issue.issue.overwrite, "replace existing files");

  PkiExportArgs pki_export;
  auto* pki_export_cmd = pki_cmd->add_subcommand(
      "export-p12",
      "PKCS#12 keystore (password from --password-file, else standard input: prompted twice "
      "with echo off on a terminal, the first line of a pipe)");
  pki_export_cmd->add_option("--cert", pki_export.p12.cert, "certificate")->required();
  pki_export_cmd->add_option("--key", pki_export.p12.key, "private key")->required();
  pki_export_cmd->add_option("--ca", pki_export.p12.ca, "CA certificates to include");
  pki_export_cmd->add_option("--out", pki_export.p12.out, "output .p12")->required();
  pki_export_cmd->add_option("--name", pki_export.p12.friendly_name, "alias (default: CN)");
  pki_export_cmd->add_option("--password-file", pki_export.password_file,
                             "file whose first line is the password");
  pki_export_cmd->add_flag("--force", pki_export.p12.overwrite, "replace an existing file");

  auto* certs_cmd = app.add_subcommand("certs", "inspect and check certificates");
  certs_cmd->require_subcommand(1);
  std::filesystem::path info_file;
  auto* certs_info_cmd =
      certs_cmd->add_subcommand("info", "show the certificates in a PEM/DER file");
  certs_info_cmd->add_option("file", info_file, "certificate file")->required();
  CertsCheckArgs certs_check;
  auto* certs_check_cmd = certs_cmd->add_subcommand(
      "check", "check a certificate, its key and chain; print every problem");
  certs_check_cmd
      ->add_option("--cert", certs_check.check.cert, "certificate (leaf first, chain may follow)")
      ->required();
  certs_check_cmd->add_option("--key", certs_check.check.key, "private key that must match");
  certs_check_cmd->add_option("--ca", certs_check.check.ca, "trusted CA bundle");
  certs_check_cmd->add_option("--purpose", certs_check.purpose, "server | client")
      ->check(CLI::IsMember({"server", "client"}))
      ->capture_default_str();
  certs_check_cmd->add_option("--hostname", certs_check.check.hostname,
                              "name or IP peers will dial");
  certs_check_cmd
      ->add_option("--expiring-days", certs_check.check.expiring_days,
                   "warn this many days before expiry")
      ->capture_default_str();

  auto* queue_cmd = app.add_subcommand("queue", "the store-and-forward queue: list, retry, delete");
  queue_cmd->require_subcommand(1);
  QueueListArgs queue_list;
  auto* queue_list_cmd =
      queue_cmd->add_subcommand("list", "per-destination counts, then the oldest entries");
  queue_list_cmd->add_option("--config,-c", config_path, "configuration file")
      ->capture_default_str();
  queue_list_cmd->add_option("--state", queue_list.state,
                             "pending | in_flight | delivered | dead (default: every state)");
  queue_list_cmd->add_option("--destination", queue_list.destination, "one destination only");
  queue_list_cmd->add_option("--limit", queue_list.limit, "at most this many entries")
      ->capture_default_str();
  queue_list_cmd->add_flag("--json", queue_list.json, "print the entries as a JSON array");
  QueueRetryArgs queue_retry;
  auto* queue_retry_cmd = queue_cmd->add_subcommand(
      "retry", "send entries again now (IDs, or every dead one with --dead)");
  queue_retry_cmd->add_option("--config,-c", config_path, "configuration file")
      ->capture_default_str();
  queue_retry_cmd->add_option("ids", queue_retry.ids, "entry IDs (from `queue list`)");
  queue_retry_cmd->add_flag("--dead", queue_retry.dead, "every dead entry");
  queue_retry_cmd->add_option("--destination", queue_retry.destination,
                              "with --dead: of this destination only");
  QueueDeleteArgs queue_delete;
  auto* queue_delete_cmd =
      queue_cmd->add_subcommand("delete", "remove entries (the stored instance stays)");
  queue_delete_cmd->add_option("--config,-c", config_path, "configuration file")
      ->capture_default_str();
  queue_delete_cmd->add_option("ids", queue_delete.ids, "entry IDs (from `queue list`)")
      ->required();

  UserCommands user_commands;
  add_user_commands(app, config_path, user_commands);

  auto* db_cmd = app.add_subcommand("db", "the index: schema migrations, encryption keys");
  db_cmd->require_subcommand(1);
  DbArgs db_args;
  auto* db_migrate_cmd = db_cmd->add_subcommand("migrate", "apply pending schema migrations");
  auto* db_status_cmd =
      db_cmd->add_subcommand("status", "field and file encryption: key versions, rows per key");
  auto* db_rotate_cmd = db_cmd->add_subcommand(
      "rotate-key",
      "re-encrypt every value with the current key (old key as the previous key); resumable");
  for (auto* cmd : {db_migrate_cmd, db_status_cmd, db_rotate_cmd}) {
    cmd->add_option("--config,-c", config_path, "configuration file")->capture_default_str();
  }
  db_rotate_cmd->add_option("--batch", db_args.batch, "rows per transaction (1-100000)")
      ->capture_default_str();
  db_rotate_cmd
      ->add_option("--pause-ms", db_args.pause_ms,
                   "wait between batches, to spare a busy database (0-60000)")
      ->capture_default_str();

  auto* storage_cmd =
      app.add_subcommand("storage", "the stored files: verify them against the index");
  storage_cmd->require_subcommand(1);
  StorageVerifyArgs verify_args;
  auto* storage_verify_cmd = storage_cmd->add_subcommand(
      "verify",
      "read every stored file back and check it against its index row (present, size, content "
      "digest), then list files no row names; read-only, safe while serving");
  storage_verify_cmd->add_option("--config,-c", config_path, "configuration file")
      ->capture_default_str();
  storage_verify_cmd->add_flag("--sizes-only", verify_args.sizes_only,
                               "check presence and size only (reads no file content)");
  storage_verify_cmd->add_flag("--no-orphans", verify_args.no_orphans,
                               "skip listing the files under storage/ that no row names");
  storage_verify_cmd
      ->add_option("--max-mb-per-s", verify_args.max_mb_per_s,
                   "read at most this many MB per second, to spare a serving gateway (0: no cap)")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*serve_cmd) return serve(config_path);
  if (*check_cmd) return config_check(config_path);
  if (*echo_cmd) {
    if (const int rc = apply_tls(echo_tls, echo.scu); rc >= 0) return rc;
    apply_timeout(echo.scu, echo_timeout);
    return run_echo(echo);
  }
  if (*send_cmd) {
    if (const int rc = apply_tls(send_tls, send.scu); rc >= 0) return rc;
    apply_timeout(send.scu, send_timeout);
    return run_send(send);
  }
  if (*pki_init_cmd) return run_pki_init(pki_init);
  if (*pki_issue_cmd) {
    if (as_server) pki_issue.kind = as_client ? "both" : "server";
    if (as_client && !as_server) pki_issue.kind = "client";
    return run_pki_issue(pki_issue);
  }
  if (*pki_export_cmd) return run_pki_export(pki_export);
  if (*certs_info_cmd) return run_certs_info(info_file);
  if (*certs_check_cmd) return run_certs_check(certs_check);
  if (*queue_list_cmd) {
    queue_list.config = config_path;
    return run_queue_list(queue_list);
  }
  if (*queue_retry_cmd) {
    queue_retry.config = config_path;
    return run_queue_retry(queue_retry);
  }
  if (*queue_delete_cmd) {
    queue_delete.config = config_path;
    return run_queue_delete(queue_delete);
  }
  if (auto rc = run_user_command(user_commands, config_path)) return *rc;
  db_args.config = config_path;
  if (*db_migrate_cmd) return run_db_migrate(db_args);
  if (*db_status_cmd) return run_db_status(db_args);
  if (*db_rotate_cmd) return run_db_rotate_key(db_args);
  if (*storage_verify_cmd) {
    verify_args.config = config_path;
    return run_storage_verify(verify_args);
  }
  if (*demo_cmd) {
    auto path = prepare_demo(demo);
    if (!path.ok()) {
      std::fprintf(stderr, "demo: %s\n", path.error().message.c_str());
      return core::exit_code(path.error().code);
    }
    std::fputs(demo_instructions(demo, *path).c_str(), stdout);
    auto token = bootstrap_demo_admin(*path);
    if (!token.ok()) {
      std::fprintf(stderr, "demo: %s\n", token.error().message.c_str());
      return core::exit_code(token.error().code);
    }
    std::fputs(demo_api_instructions(demo, *path, *token).c_str(), stdout);
    std::fflush(stdout);
    if (!demo.serve) return 0;
    return serve(*path);
  }
  return 2;
}

}  // namespace gw::app
