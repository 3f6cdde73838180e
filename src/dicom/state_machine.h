#pragma once
/// The DICOM Upper Layer association state machine (PS3.8 section 9.2, table 9-10), as a pure
/// function: (state, event) -> (action, next state). The association drivers (acceptor and
/// requestor coroutines) feed it every event and perform the action it names, so protocol
/// violations (a P-DATA before the association is up, a second A-ASSOCIATE-RQ, …) are answered
/// exactly as the standard says, including release collisions and the ARTIM timer.

#include <cstdint>
#include <string_view>

namespace gw::dicom {

enum class State : std::uint8_t {
  kSta1 = 1,  ///< Idle
  kSta2,      ///< Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
  kSta3,      ///< Awaiting local A-ASSOCIATE response primitive
  kSta4,      ///< Awaiting transport connection opening to complete
  kSta5,      ///< Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU
  kSta6,      ///< Association established and ready for data transfer
  kSta7,      ///< Awaiting A-RELEASE-RP PDU
  kSta8,      ///< Awaiting local A-RELEASE response primitive
  kSta9,      ///< Release collision requestor side: awaiting A-RELEASE response primitive
  kSta10,     ///< Release collision acceptor side: awaiting A-RELEASE-RP PDU
  kSta11,     ///< Release collision requestor side: awaiting A-RELEASE-RP PDU
  kSta12,     ///< Release collision acceptor side: awaiting A-RELEASE response primitive
  kSta13,     ///< Awaiting transport connection close indication
};

enum class Event : std::uint8_t {
  kEvt1 = 1,  ///< A-ASSOCIATE request (local user)
  kEvt2,      ///< Transport connection confirm (local transport service)
  kEvt3,      ///< A-ASSOCIATE-AC PDU received
  kEvt4,      ///< A-ASSOCIATE-RJ PDU received
  kEvt5,      ///< Transport connection indication (an incoming connection)
  kEvt6,      ///< A-ASSOCIATE-RQ PDU received
  kEvt7,      ///< A-ASSOCIATE response primitive (accept)
  kEvt8,      ///< A-ASSOCIATE response primitive (reject)
  kEvt9,      ///< P-DATA request primitive
  kEvt10,     ///< P-DATA-TF PDU received
  kEvt11,     ///< A-RELEASE request primitive
  kEvt12,     ///< A-RELEASE-RQ PDU received
  kEvt13,     ///< A-RELEASE-RP PDU received
  kEvt14,     ///< A-RELEASE response primitive
  kEvt15,     ///< A-ABORT request primitive
  kEvt16,     ///< A-ABORT PDU received
  kEvt17,     ///< Transport connection closed indication
  kEvt18,     ///< ARTIM timer expired
  kEvt19,     ///< Unrecognized or invalid PDU received
};

/// The actions of PS3.8 section 9.2.2 (AE-n, DT-n, AR-n, AA-n).
// One row per group of actions, as PS3.8 lists them.
// clang-format off
enum class Action : std::uint8_t {
  kAe1, kAe2, kAe3, kAe4, kAe5, kAe6, kAe7, kAe8,
  kDt1, kDt2,
  kAr1, kAr2, kAr3, kAr4, kAr5, kAr6, kAr7, kAr8, kAr9, kAr10,
  kAa1, kAa2, kAa3, kAa4, kAa5, kAa6, kAa7, kAa8,
};
// clang-format on

struct Transition {
  Action action;
  State next;
};

/// Which side of the association we are; the release collision (AR-8) resolves by it.
enum class Role : std::uint8_t { kRequestor, kAcceptor };

/// The table lookup. For every (state, event) pair the standard leaves blank (not possible in a
/// correct implementation), this returns AA-8 (send A-ABORT, issue A-P-ABORT, next Sta13), which
/// is what a robust implementation does with an event it cannot have.
///
/// AR-8 ("release collision") has two outcomes depending on the role: requestor -> Sta9,
/// acceptor -> Sta10; `role` selects it. AE-6 (A-ASSOCIATE-RQ acceptable or not) likewise has
/// two outcomes; this function returns kSta3 for it and the driver moves to Sta13 after sending
/// A-ASSOCIATE-RJ itself (see `after_ae6_reject`).
Transition next(State state, Event event, Role role);

/// The state after AE-6 when the local policy rejects the A-ASSOCIATE-RQ (RJ sent, ARTIM on).
inline constexpr State after_ae6_reject() { return State::kSta13; }

std::string_view name(State state);    ///< "Sta6"
std::string_view name(Event event);    ///< "Evt10"
std::string_view name(Action action);  ///< "AA-1"

/// A tracker for one association: holds the state and applies events. Not thread-safe (one
/// association is driven from one strand).
class StateMachine {
 public:
  explicit StateMachine(Role role, State initial = State::kSta1) : role_(role), state_(initial) {}

  /// Applies the event, moves to the next state and returns the action to perform.
  Action on(Event event) {
    const Transition t = next(state_, event, role_);
    state_ = t.next;
    return t.action;
  }
  /// For AE-6 rejects and other driver-decided outcomes.
  void force(State state) { state_ = state; }
  State state() const { return state_; }
  Role role() const { return role_; }

 private:
  Role role_;
  State state_;
};

}  // namespace gw::dicom
