#pragma once
/// Routing rules (`routes:` in the config) compiled once into a table that answers, for each
/// received instance, which destinations it goes to. A table is immutable after compile(): share
/// it as std::shared_ptr<const RoutingTable> and swap it on reload.

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/ip_network.h"
#include "core/result.h"

namespace gw::queue {

/// What a received instance offers to the rules. Views must outlive the route() call.
struct RoutingInput {
  std::string_view calling_ae;
  std::string_view called_ae;
  std::string_view listener;  ///< the listener's configured name
  std::string_view peer_ip;   ///< "10.1.2.3", "::ffff:10.1.2.3", "fe80::1%eth0"; no port
  std::string_view modality;
  std::string_view sop_class_uid;
  /// (group << 16 | element) -> value, for the present top-level tags among required_tags();
  /// null = no tag is present.
  const std::map<std::uint32_t, std::string>* tags = nullptr;
};

class RoutingTable {
 public:
  /// Resolves tag keywords with DCMTK's data dictionary and compiles regexes. Problems are
  /// reported like config issues ("routes[2].match.tags.StationNme: unknown DICOM keyword (did
  /// you mean `StationName`?)"); any problem makes the result kConfig with all of them.
  static core::Result<RoutingTable> compile(const config::Config& config,
                                            std::vector<config::ConfigIssue>* issues = nullptr);

  /// Destination names, each once, in route order. Routes are tried in order; the first that
  /// matches ends the search unless it has `continue: true`. The default route applies only
  /// when no other route matched. Independent routes (config::Route::independent) are tried
  /// last, each on its own, and do not count as a match for the default. No routes: none.
  std::vector<std::string> route(const RoutingInput& in) const;

  /// Tags some rule looks at, sorted: what the instance parser must extract into
  /// RoutingInput::tags.
  const std::vector<std::uint32_t>& required_tags() const { return required_tags_; }

  bool empty() const { return routes_.empty() && !default_ && independent_.empty(); }

 private:
  struct TagRule {
    std::uint32_t tag = 0;
    config::TagCondition::Op op = config::TagCondition::Op::kExists;
    std::string value;  ///< kEquals, trailing spaces and NULs trimmed
    std::regex regex;   ///< kRegex
    bool exists = true;
  };
  struct CompiledRoute {
    std::vector<std::string> calling_ae;  ///< spaces trimmed
    std::vector<std::string> called_ae;   ///< spaces trimmed
    std::vector<std::string> listener;
    std::vector<config::IpNetwork> source;
    std::vector<std::string> modality;
    std::vector<std::string> sop_class;
    std::vector<TagRule> tags;
    std::vector<std::size_t> destinations;  ///< indexes into destination_names_
    bool continue_matching = false;
  };

  /// `in`'s AE titles, modality and SOP class already trimmed; `peer` null when unparsable.
  static bool matches(const CompiledRoute& route, const RoutingInput& in,
                      const config::IpAddress* peer);
  void add_destinations(const CompiledRoute& route, std::vector<std::string>& out) const;

  std::vector<CompiledRoute> routes_;       ///< in config order, the default route excluded
  std::optional<CompiledRoute> default_;    ///< at most one
  std::vector<CompiledRoute> independent_;  ///< API destinations' matches, in order
  std::vector<std::string> destination_names_;
  std::vector<std::uint32_t> required_tags_;
  bool uses_source_ = false;  ///< parse the peer address only when some rule needs it
};

}  // namespace gw::queue
