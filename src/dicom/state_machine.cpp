#include "dicom/state_machine.h"

#include <array>

namespace gw::dicom {
namespace {

constexpr std::size_t kStateCount = 13;
constexpr std::size_t kEventCount = 19;

/// A cell the standard leaves blank. Not an enumerator: the table lookup maps it to AA-8.
constexpr auto kBlank = static_cast<Action>(0xFF);

using Row = std::array<Action, kStateCount>;

// PS3.8 table 9-10: one row per event, one column per state (Sta1 … Sta13).
// clang-format off
constexpr std::array<Row, kEventCount> kTable = [] {
  using enum Action;
  constexpr Action kNo = kBlank;  // short, so the table stays a table
  return std::array<Row, kEventCount>{{
    // Sta1  Sta2  Sta3  Sta4  Sta5  Sta6  Sta7  Sta8  Sta9  Sta10 Sta11 Sta12 Sta13
    Row{kAe1, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt1
    Row{kNo,  kNo,  kNo,  kAe2, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt2
    Row{kNo,  kAa1, kAa8, kNo,  kAe3, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa6},    // Evt3
    Row{kNo,  kAa1, kAa8, kNo,  kAe4, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa6},    // Evt4
    Row{kAe5, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt5
    Row{kNo,  kAe6, kAa8, kNo,  kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa7},    // Evt6
    Row{kNo,  kNo,  kAe7, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt7
    Row{kNo,  kNo,  kAe8, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt8
    Row{kNo,  kNo,  kNo,  kNo,  kNo,  kDt1, kNo,  kAr7, kNo,  kNo,  kNo,  kNo,  kNo},     // Evt9
    Row{kNo,  kAa1, kAa8, kNo,  kAa8, kDt2, kAr6, kAa8, kAa8, kAa8, kAa8, kAa8, kAa6},    // Evt10
    Row{kNo,  kNo,  kNo,  kNo,  kNo,  kAr1, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo},     // Evt11
    Row{kNo,  kAa1, kAa8, kNo,  kAa8, kAr2, kAr8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa6},    // Evt12
    Row{kNo,  kAa1, kAa8, kNo,  kAa8, kAa8, kAr3, kAa8, kAa8, kAr10, kAr3, kAa8, kAa6},   // Evt13
    Row{kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kAr4, kAr9, kNo,  kNo,  kAr4, kNo},     // Evt14
    Row{kNo,  kNo,  kAa1, kAa2, kAa1, kAa1, kAa1, kAa1, kAa1, kAa1, kAa1, kAa1, kNo},     // Evt15
    Row{kNo,  kAa2, kAa3, kNo,  kAa3, kAa3, kAa3, kAa3, kAa3, kAa3, kAa3, kAa3, kAa2},    // Evt16
    Row{kNo,  kAa5, kAa4, kAa4, kAa4, kAa4, kAa4, kAa4, kAa4, kAa4, kAa4, kAa4, kAr5},    // Evt17
    Row{kNo,  kAa2, kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kNo,  kAa2},    // Evt18
    Row{kNo,  kAa1, kAa8, kNo,  kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa8, kAa7},    // Evt19
  }};
}();
// clang-format on

/// The state each action leads to (PS3.8 tables 9-6 to 9-9). AE-6 and AR-8 have two outcomes;
/// see `next` in the header.
State state_after(Action action, Role role) {
  switch (action) {
    case Action::kAe1:
      return State::kSta4;
    case Action::kAe2:
      return State::kSta5;
    case Action::kAe3:
      return State::kSta6;
    case Action::kAe4:
      return State::kSta1;
    case Action::kAe5:
      return State::kSta2;
    case Action::kAe6:
      return State::kSta3;
    case Action::kAe7:
      return State::kSta6;
    case Action::kAe8:
      return State::kSta13;
    case Action::kDt1:
      return State::kSta6;
    case Action::kDt2:
      return State::kSta6;
    case Action::kAr1:
      return State::kSta7;
    case Action::kAr2:
      return State::kSta8;
    case Action::kAr3:
      return State::kSta1;
    case Action::kAr4:
      return State::kSta13;
    case Action::kAr5:
      return State::kSta1;
    case Action::kAr6:
      return State::kSta7;
    case Action::kAr7:
      return State::kSta8;
    case Action::kAr8:
      return role == Role::kRequestor ? State::kSta9 : State::kSta10;
    case Action::kAr9:
      return State::kSta11;
    case Action::kAr10:
      return State::kSta12;
    case Action::kAa1:
      return State::kSta13;
    case Action::kAa2:
      return State::kSta1;
    case Action::kAa3:
      return State::kSta1;
    case Action::kAa4:
      return State::kSta1;
    case Action::kAa5:
      return State::kSta1;
    case Action::kAa6:
      return State::kSta13;
    case Action::kAa7:
      return State::kSta13;
    case Action::kAa8:
      return State::kSta13;
  }
  return State::kSta13;
}

}  // namespace

Transition next(State state, Event event, Role role) {
  const auto s = static_cast<std::size_t>(state);
  const auto e = static_cast<std::size_t>(event);
  if (s < 1 || s > kStateCount || e < 1 || e > kEventCount) {
    return {Action::kAa8, State::kSta13};
  }
  const Action action = kTable[e - 1][s - 1];
  if (action == kBlank) return {Action::kAa8, State::kSta13};
  return {action, state_after(action, role)};
}

std::string_view name(State state) {
  static constexpr std::array<std::string_view, kStateCount> kNames = {
      "Sta1", "Sta2", "Sta3",  "Sta4",  "Sta5",  "Sta6", "Sta7",
      "Sta8", "Sta9", "Sta10", "Sta11", "Sta12", "Sta13"};
  const auto i = static_cast<std::size_t>(state);
  return i >= 1 && i <= kStateCount ? kNames[i - 1] : "Sta?";
}

std::string_view name(Event event) {
  static constexpr std::array<std::string_view, kEventCount> kNames = {
      "Evt1",  "Evt2",  "Evt3",  "Evt4",  "Evt5",  "Evt6",  "Evt7",  "Evt8",  "Evt9", "Evt10",
      "Evt11", "Evt12", "Evt13", "Evt14", "Evt15", "Evt16", "Evt17", "Evt18", "Evt19"};
  const auto i = static_cast<std::size_t>(event);
  return i >= 1 && i <= kEventCount ? kNames[i - 1] : "Evt?";
}

std::string_view name(Action action) {
  static constexpr std::array<std::string_view, 28> kNames = {
      "AE-1", "AE-2", "AE-3", "AE-4", "AE-5", "AE-6", "AE-7", "AE-8", "DT-1", "DT-2",
      "AR-1", "AR-2", "AR-3", "AR-4", "AR-5", "AR-6", "AR-7", "AR-8", "AR-9", "AR-10",
      "AA-1", "AA-2", "AA-3", "AA-4", "AA-5", "AA-6", "AA-7", "AA-8"};
  const auto i = static_cast<std::size_t>(action);
  return i < kNames.size() ? kNames[i] : "??";
}

}  // namespace gw::dicom
