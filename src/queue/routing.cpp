#include "queue/routing.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dctag.h>
#include <fmt/format.h>

#include <algorithm>
#include <span>
#include <utility>

#include "config/suggest.h"
#include "dicom/binary_vr.h"

namespace gw::queue {
namespace {

using config::ConfigIssue;
using config::TagCondition;

/// libstdc++'s std::regex recurses once per input character: a long text value (UT, LT) could
/// exhaust the stack, so longer values never match a regex.
constexpr std::size_t kMaxRegexInput = 4096;

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

/// DICOM pads string values to an even length with a space (a NUL for UIDs).
std::string_view trim_padding(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return s;
}

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

/// True for `value` itself (padding trimmed) or, for a multi-valued string, any one value.
template <class Predicate>
bool any_value(std::string_view value, Predicate predicate) {
  value = trim_padding(value);
  if (predicate(value)) return true;
  if (value.find('\\') == std::string_view::npos) return false;
  while (true) {
    const auto backslash = value.find('\\');
    if (predicate(trim_padding(value.substr(0, backslash)))) return true;
    if (backslash == std::string_view::npos) return false;
    value.remove_prefix(backslash + 1);
  }
}

struct DictionaryTag {
  std::uint32_t tag = 0;
  DcmEVR vr = EVR_UNKNOWN;
};

/// Calls `visit(entry)` for each standard (non-private, non-repeating) dictionary entry until it
/// returns true. Private entries share keywords with standard ones (GEMS_GENIE_1's
/// StudyComments vs the retired (0032,4000)), so a keyword names a standard tag only; private
/// tags are written "gggg,eeee".
template <class Visit>
void for_each_standard_entry(Visit visit) {
  // normalBegin() is not const, but iterating does not modify the dictionary.
  auto& dictionary = const_cast<DcmDataDictionary&>(dcmDataDict.rdlock());
  for (auto it = dictionary.normalBegin(); it != dictionary.normalEnd(); ++it) {
    const DcmDictEntry* entry = *it;
    if (entry->getPrivateCreator() != nullptr || entry->getTagName() == nullptr) continue;
    if (visit(*entry)) break;
  }
  dcmDataDict.rdunlock();
}

std::optional<DictionaryTag> find_keyword(const std::string& keyword) {
  std::optional<DictionaryTag> found;
  for_each_standard_entry([&](const DcmDictEntry& entry) {
    if (keyword != entry.getTagName()) return false;
    found = DictionaryTag{static_cast<std::uint32_t>(entry.getGroup()) << 16 | entry.getElement(),
                          entry.getEVR()};
    return true;
  });
  return found;
}

/// Every standard keyword, for "did you mean". Only on the error path.
std::vector<std::string> dictionary_keywords() {
  std::vector<std::string> names;
  for_each_standard_entry([&](const DcmDictEntry& entry) {
    names.emplace_back(entry.getTagName());
    return false;
  });
  return names;
}

class Compiler {
 public:
  std::vector<ConfigIssue>& issues() { return issues_; }

  /// The tag for `keyword` ("StationName", or "gggg,eeee" for any tag); reports and returns
  /// nullopt when it does not name a data set element `op` can test.
  std::optional<std::uint32_t> resolve(const std::string& path, const std::string& keyword,
                                       TagCondition::Op op) {
    std::optional<DictionaryTag> tag;
    if (keyword.find(',') != std::string::npos) {
      // "gggg,eeee": any tag, private ones included; the VR is the dictionary's, if it knows.
      DcmTag parsed;
      if (DcmTag::findTagFromName(keyword.c_str(), parsed).good()) {
        tag =
            DictionaryTag{static_cast<std::uint32_t>(parsed.getGroup()) << 16 | parsed.getElement(),
                          parsed.getEVR()};
      }
    } else {
      tag = find_keyword(keyword);
    }
    if (!tag) {
      std::string message = "unknown DICOM keyword";
      if (!dictionary_checked_) {
        dictionary_checked_ = true;
        dictionary_loaded_ = dcmDataDict.isDictionaryLoaded();
      }
      if (!dictionary_loaded_) {
        message += " (DCMTK's data dictionary is not loaded: check DCMDICTPATH)";
      } else if (find_keyword("RETIRED_" + keyword)) {
        message += fmt::format(" (did you mean `RETIRED_{}`?)", keyword);
      } else if (auto best = suggest(keyword)) {
        message += fmt::format(" (did you mean `{}`?)", *best);
      }
      issues_.push_back({path, std::move(message)});
      return std::nullopt;
    }
    const std::uint32_t group = tag->tag >> 16;
    if (group == 0x0000 || group == 0x0002 || group == 0xFFFE) {
      issues_.push_back({path, fmt::format("`{}` ({:04X},{:04X}) is not a data set element",
                                           keyword, group, tag->tag & 0xFFFF)});
      return std::nullopt;
    }
    if (op != TagCondition::Op::kExists && dicom::is_binary_vr(tag->vr)) {
      issues_.push_back({path, fmt::format("`{}` holds binary data or a sequence: only "
                                           "`exists` can test it",
                                           keyword)});
      return std::nullopt;
    }
    return tag->tag;
  }

 private:
  std::optional<std::string> suggest(const std::string& keyword) {
    if (keywords_.empty()) keywords_ = dictionary_keywords();
    std::vector<std::string_view> views(keywords_.begin(), keywords_.end());
    auto best = config::closest(keyword, views);
    if (!best) return std::nullopt;
    return std::string(*best);
  }

  std::vector<ConfigIssue> issues_;
  std::vector<std::string> keywords_;
  bool dictionary_checked_ = false;
  bool dictionary_loaded_ = true;
};

std::string format_issues(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& issue : issues) {
    if (!out.empty()) out += '\n';
    out += fmt::format("{}: {}", issue.path, issue.message);
  }
  return out;
}

}  // namespace

core::Result<RoutingTable> RoutingTable::compile(const config::Config& config,
                                                 std::vector<ConfigIssue>* issues) {
  if (issues != nullptr) issues->clear();
  Compiler compiler;
  RoutingTable table;
  for (const auto& d : config.destinations) {
    if (!contains(table.destination_names_, d.name)) table.destination_names_.push_back(d.name);
  }

  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const config::Route& route = config.routes[i];
    const config::RouteMatch& match = route.match;
    const std::string path = fmt::format("routes[{}]", i);
    CompiledRoute compiled;
    for (const auto& ae : match.calling_ae) compiled.calling_ae.emplace_back(trim_spaces(ae));
    for (const auto& ae : match.called_ae) compiled.called_ae.emplace_back(trim_spaces(ae));
    compiled.listener = match.listener;
    compiled.modality = match.modality;
    compiled.sop_class = match.sop_class;
    for (const auto& source : match.source) {
      auto network = config::parse_ip_network(source);
      if (!network.ok()) {
        compiler.issues().push_back({path + ".match.source", network.error().message});
        continue;
      }
      compiled.source.push_back(*network);
      table.uses_source_ = true;
    }
    for (const auto& condition : match.tags) {
      const std::string tag_path = fmt::format("{}.match.tags.{}", path, condition.keyword);
      auto tag = compiler.resolve(tag_path, condition.keyword, condition.op);
      if (!tag) continue;
      TagRule rule;
      rule.tag = *tag;
      rule.op = condition.op;
      rule.exists = condition.exists;
      if (condition.op == TagCondition::Op::kEquals) {
        rule.value = trim_padding(condition.value);
      } else if (condition.op == TagCondition::Op::kRegex) {
        try {
          rule.regex = std::regex(condition.value, std::regex::ECMAScript | std::regex::optimize);
        } catch (const std::regex_error& e) {
          compiler.issues().push_back(
              {tag_path + ".regex",
               fmt::format("invalid regular expression `{}`: {}", condition.value, e.what())});
          continue;
        }
      }
      table.required_tags_.push_back(rule.tag);
      compiled.tags.push_back(std::move(rule));
    }
    for (std::size_t j = 0; j < route.destinations.size(); ++j) {
      const auto& names = table.destination_names_;
      auto it = std::find(names.begin(), names.end(), route.destinations[j]);
      if (it == names.end()) {
        compiler.issues().push_back(
            {fmt::format("{}.destinations[{}]", path, j),
             fmt::format("unknown destination `{}`", route.destinations[j])});
        continue;
      }
      compiled.destinations.push_back(static_cast<std::size_t>(it - names.begin()));
    }
    compiled.continue_matching = route.continue_matching;
    if (route.independent) {
      table.independent_.push_back(std::move(compiled));
    } else if (!route.is_default) {
      table.routes_.push_back(std::move(compiled));
    } else if (table.default_) {
      compiler.issues().push_back({path + ".default", "only one route may be the default"});
    } else {
      table.default_ = std::move(compiled);
    }
  }

  if (!compiler.issues().empty()) {
    std::string message = format_issues(compiler.issues());
    if (issues != nullptr) *issues = std::move(compiler.issues());
    return core::make_error(core::ErrorCode::kConfig, std::move(message));
  }
  auto& tags = table.required_tags_;
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  return table;
}

bool RoutingTable::matches(const CompiledRoute& route, const RoutingInput& in,
                           const config::IpAddress* peer) {
  if (!route.calling_ae.empty() && !contains(route.calling_ae, in.calling_ae)) return false;
  if (!route.called_ae.empty() && !contains(route.called_ae, in.called_ae)) return false;
  if (!route.listener.empty() && !contains(route.listener, in.listener)) return false;
  if (!route.modality.empty() && !contains(route.modality, in.modality)) return false;
  if (!route.sop_class.empty() && !contains(route.sop_class, in.sop_class_uid)) return false;
  if (!route.source.empty()) {
    if (peer == nullptr) return false;
    const bool any = std::any_of(route.source.begin(), route.source.end(),
                                 [&](const config::IpNetwork& n) { return n.contains(*peer); });
    if (!any) return false;
  }
  return std::all_of(route.tags.begin(), route.tags.end(), [&](const TagRule& rule) {
    const std::string* value = nullptr;
    if (in.tags != nullptr) {
      if (auto it = in.tags->find(rule.tag); it != in.tags->end()) value = &it->second;
    }
    switch (rule.op) {
      case TagCondition::Op::kExists:
        return (value != nullptr) == rule.exists;
      case TagCondition::Op::kEquals:
        return value != nullptr &&
               any_value(*value, [&](std::string_view v) { return v == rule.value; });
      case TagCondition::Op::kRegex:
        return value != nullptr && any_value(*value, [&](std::string_view v) {
                 return v.size() <= kMaxRegexInput &&
                        std::regex_match(v.begin(), v.end(), rule.regex);
               });
    }
    return false;
  });
}

void RoutingTable::add_destinations(const CompiledRoute& route,
                                    std::vector<std::string>& out) const {
  for (std::size_t index : route.destinations) {
    const std::string& name = destination_names_[index];
    if (!contains(out, name)) out.push_back(name);
  }
}

std::vector<std::string> RoutingTable::route(const RoutingInput& raw) const {
  RoutingInput in = raw;
  in.calling_ae = trim_spaces(raw.calling_ae);
  in.called_ae = trim_spaces(raw.called_ae);
  in.modality = trim_padding(raw.modality);
  in.sop_class_uid = trim_padding(raw.sop_class_uid);
  std::optional<config::IpAddress> peer;
  if (uses_source_ && !raw.peer_ip.empty()) {
    auto parsed = config::parse_ip_address(raw.peer_ip);
    if (parsed.ok()) peer = *parsed;
  }
  const config::IpAddress* peer_ptr = peer ? &*peer : nullptr;

  std::vector<std::string> out;
  bool matched = false;
  for (const CompiledRoute& r : routes_) {
    if (!matches(r, in, peer_ptr)) continue;
    matched = true;
    add_destinations(r, out);
    if (!r.continue_matching) break;
  }
  if (!matched && default_) add_destinations(*default_, out);
  for (const CompiledRoute& r : independent_) {
    if (matches(r, in, peer_ptr)) add_destinations(r, out);
  }
  return out;
}

}  // namespace gw::queue
