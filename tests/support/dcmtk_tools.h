#pragma once
/// DCMTK command-line tools as test peers, started with flags that make tests fast and
/// bounded: TCP_NODELAY=1 (Nagle trap), connect/ACSE timeouts, no reverse DNS lookups.
/// See /work/shared/PEERS.md for what these tools do on the wire.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "support/process.h"

namespace gw::test {

using namespace std::chrono_literals;

struct StoreScpOptions {
  std::string aet = "STORESCP";
  /// --fork: one child process per association (several at once); false: one at a time.
  bool fork = true;
  /// Where storescp.stdout/.stderr go; default: a "logs" directory next to out_dir (never
  /// inside it, so out_dir holds received files only).
  std::filesystem::path log_dir;
  Env env;
  std::chrono::milliseconds start_timeout = 10s;
};

/// A running storescp. Destroying it kills storescp and its forked workers.
struct StoreScp {
  Process process;
  std::uint16_t port = 0;
  std::filesystem::path out_dir;

  /// Regular files in out_dir, sorted. storescp answers a C-STORE only after writing the
  /// file, so once the sender saw success the file is complete.
  std::vector<std::filesystem::path> received_files() const;
  /// sop_instance_uids_of(received_files()); `files` (if given) gets how many files there were,
  /// so a caller can count duplicate deliveries (storescp +uf keeps each one as its own file).
  std::set<std::string> received_uids(std::size_t* files = nullptr) const;
};

/// Starts `storescp [--fork] -od OUT_DIR +B +xa -dhl -aet AET [extra_args] PORT` and waits
/// until the port accepts connections. +B writes what arrived bit-preserving, +xa accepts every
/// transfer syntax, -dhl skips reverse DNS. storescp binds all interfaces (DCMTK has no bind
/// address option); connect to 127.0.0.1 only. Port 0: pick a free port, and retry on another
/// one if storescp dies at start (lost the race for the port). Throws std::runtime_error if it
/// does not come up (with its stderr in the message).
StoreScp start_storescp(std::uint16_t port, const std::filesystem::path& out_dir,
                        const std::vector<std::string>& extra_args = {},
                        const StoreScpOptions& options = {});

/// `echoscu -aec AEC -to 10 -ta 10 -td 10 [extra] HOST PORT` (C-ECHO, one association).
CommandResult run_echoscu(const std::string& host, std::uint16_t port,
                          const std::string& aec = "ANY-SCP",
                          const std::vector<std::string>& extra_args = {},
                          std::chrono::milliseconds timeout = 30s);

/// Sends `files` with storescu: `storescu -R <proposal> -to 10 -ta 30 [extra] HOST PORT
/// FILES...`. Put `-aec NAME` (called AE title, default ANY-SCP), `-aet NAME`, `-nh`, TLS
/// flags... in extra_args.
///
/// DCMTK trap: storescu does not propose a file's own transfer syntax. Every SOP class gets
/// one context with the *preferred* syntax (-x flag, default Explicit LE) and one with the
/// uncompressed fallbacks; a file in another (compressed) syntax then needs decompressing,
/// which storescu 3.6.7 cannot do ("unable to convert dataset"). So this wrapper groups the
/// files by their transfer syntax and runs storescu once per group (one association each, in
/// order of first appearance) with the matching -x flag (-xs for JPEG lossless, -xv for JPEG
/// 2000...). `-R` proposes only the SOP classes the files need (without it: 128 contexts).
/// If extra_args already has a -x flag it is used for all files in a single run.
///
/// The result's exit_code is the first non-zero one; out/err are concatenated. `timeout`
/// covers all runs together.
CommandResult run_storescu(const std::string& host, std::uint16_t port,
                           const std::vector<std::filesystem::path>& files,
                           const std::vector<std::string>& extra_args = {},
                           std::chrono::milliseconds timeout = 300s);

/// The storescu flag proposing `transfer_syntax_uid` first ("-xs" for 1.2.840.10008.1.2.4.70);
/// empty if storescu has none (it then proposes uncompressed syntaxes).
std::string storescu_proposal_flag(const std::string& transfer_syntax_uid);

/// The Transfer Syntax UID (0002,0010) from a Part 10 file's meta header; empty if the file
/// has no "DICM" preamble or no such element. Reads only the meta header.
std::string transfer_syntax_of(const std::filesystem::path& file);

/// The Media Storage SOP Instance UID (0002,0003) from a Part 10 file's meta header (equal to
/// the data set's SOP Instance UID in files written by DCMTK and the gateway); empty if absent.
/// Cheap: no dcmdump process.
std::string sop_instance_uid_of(const std::filesystem::path& file);

/// The set of sop_instance_uid_of() of `files` ("" stands for a file without one, e.g. a file
/// storescp is still writing).
std::set<std::string> sop_instance_uids_of(const std::vector<std::filesystem::path>& files);

/// `dcmdump [extra] FILE` → stdout. Throws std::runtime_error if dcmdump fails (with stderr).
std::string dcmdump(const std::filesystem::path& file,
                    const std::vector<std::string>& extra_args = {});

/// True if two files hold the same data set *by value*: what a receiver stored against what
/// was sent, although the sender re-encoded it. Compares `dcmdump +L -Un` output (+L: values
/// in full, pixel data included; -Un: UIDs as numbers) line by line, streamed from temp files
/// (memory: a few times the largest element, not the whole dump) after removing what is encoding,
/// not value:
///  - everything before "# Dicom-Data-Set" (group 0002, written by each file's writer) and the
///    "# Used TransferSyntax" line;
///  - group lengths (gggg,0000), item/sequence delimitation items, trailing padding
///    (fffc,fffc);
///  - "explicit/undefined length" in sequence and item headers and every element's length
///    column ("# 56, 1 Name" → "# 1 Name"; storescu may change u/l to explicit lengths).
/// A file dcmdump cannot read is never equal. On a difference, `why` (if given) gets the first
/// differing line of each side.
bool dcmdump_equal(const std::filesystem::path& a, const std::filesystem::path& b,
                   std::string* why = nullptr);

}  // namespace gw::test
