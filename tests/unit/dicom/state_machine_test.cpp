#include "dicom/state_machine.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace gw::dicom {
namespace {

struct Step {
  Event event;
  Action action;
  State next;
};

void run(StateMachine& sm, const std::vector<Step>& steps) {
  for (const Step& step : steps) {
    const State before = sm.state();
    EXPECT_EQ(sm.on(step.event), step.action)
        << name(before) << " + " << name(step.event) << " gave the wrong action";
    EXPECT_EQ(sm.state(), step.next) << name(before) << " + " << name(step.event);
  }
}

TEST(StateMachine, AcceptorHappyPath) {
  StateMachine sm(Role::kAcceptor);
  run(sm, {
              {Event::kEvt5, Action::kAe5, State::kSta2},    // connection accepted, ARTIM on
              {Event::kEvt6, Action::kAe6, State::kSta3},    // A-ASSOCIATE-RQ received
              {Event::kEvt7, Action::kAe7, State::kSta6},    // we accept: A-ASSOCIATE-AC
              {Event::kEvt10, Action::kDt2, State::kSta6},   // P-DATA-TF received
              {Event::kEvt9, Action::kDt1, State::kSta6},    // P-DATA sent (C-STORE-RSP)
              {Event::kEvt12, Action::kAr2, State::kSta8},   // A-RELEASE-RQ received
              {Event::kEvt14, Action::kAr4, State::kSta13},  // A-RELEASE-RP sent, ARTIM on
              {Event::kEvt17, Action::kAr5, State::kSta1},   // peer closed
          });
}

TEST(StateMachine, AcceptorRejects) {
  StateMachine sm(Role::kAcceptor);
  run(sm, {{Event::kEvt5, Action::kAe5, State::kSta2},
           {Event::kEvt6, Action::kAe6, State::kSta3},
           {Event::kEvt8, Action::kAe8, State::kSta13},
           {Event::kEvt18, Action::kAa2, State::kSta1}});
  // AE-6 decided by local policy without an indication: the driver forces Sta13.
  StateMachine direct(Role::kAcceptor, State::kSta2);
  EXPECT_EQ(direct.on(Event::kEvt6), Action::kAe6);
  direct.force(after_ae6_reject());
  EXPECT_EQ(direct.state(), State::kSta13);
}

TEST(StateMachine, RequestorHappyPath) {
  StateMachine sm(Role::kRequestor);
  run(sm, {
              {Event::kEvt1, Action::kAe1, State::kSta4},   // A-ASSOCIATE request: connect
              {Event::kEvt2, Action::kAe2, State::kSta5},   // connected: send RQ
              {Event::kEvt3, Action::kAe3, State::kSta6},   // A-ASSOCIATE-AC received
              {Event::kEvt9, Action::kDt1, State::kSta6},   // send P-DATA
              {Event::kEvt10, Action::kDt2, State::kSta6},  // receive P-DATA
              {Event::kEvt11, Action::kAr1, State::kSta7},  // send A-RELEASE-RQ
              {Event::kEvt10, Action::kAr6, State::kSta7},  // late P-DATA still delivered
              {Event::kEvt13, Action::kAr3, State::kSta1},  // A-RELEASE-RP: close
          });
}

TEST(StateMachine, RequestorRejected) {
  StateMachine sm(Role::kRequestor);
  run(sm, {{Event::kEvt1, Action::kAe1, State::kSta4},
           {Event::kEvt2, Action::kAe2, State::kSta5},
           {Event::kEvt4, Action::kAe4, State::kSta1}});
}

TEST(StateMachine, PDataBeforeAssociationAborts) {
  StateMachine sm(Role::kAcceptor);
  run(sm, {{Event::kEvt5, Action::kAe5, State::kSta2},
           {Event::kEvt10, Action::kAa1, State::kSta13},
           {Event::kEvt17, Action::kAr5, State::kSta1}});
}

TEST(StateMachine, OtherPdusInSta2Abort) {
  for (const Event e :
       {Event::kEvt3, Event::kEvt4, Event::kEvt10, Event::kEvt12, Event::kEvt13, Event::kEvt19}) {
    const Transition t = next(State::kSta2, e, Role::kAcceptor);
    EXPECT_EQ(t.action, Action::kAa1) << name(e);
    EXPECT_EQ(t.next, State::kSta13) << name(e);
  }
  EXPECT_EQ(next(State::kSta2, Event::kEvt16, Role::kAcceptor).action, Action::kAa2);
  EXPECT_EQ(next(State::kSta2, Event::kEvt17, Role::kAcceptor).action, Action::kAa5);
}

TEST(StateMachine, ReleaseCollisionRequestor) {
  StateMachine sm(Role::kRequestor, State::kSta6);
  run(sm, {
              {Event::kEvt11, Action::kAr1, State::kSta7},   // we send A-RELEASE-RQ
              {Event::kEvt12, Action::kAr8, State::kSta9},   // peer's A-RELEASE-RQ crosses
              {Event::kEvt14, Action::kAr9, State::kSta11},  // we send A-RELEASE-RP
              {Event::kEvt13, Action::kAr3, State::kSta1},   // peer's A-RELEASE-RP: close
          });
}

TEST(StateMachine, ReleaseCollisionAcceptor) {
  StateMachine sm(Role::kAcceptor, State::kSta6);
  run(sm, {
              {Event::kEvt11, Action::kAr1, State::kSta7},
              {Event::kEvt12, Action::kAr8, State::kSta10},
              {Event::kEvt13, Action::kAr10, State::kSta12},  // requestor's RP arrives first
              {Event::kEvt14, Action::kAr4, State::kSta13},   // then we send ours
              {Event::kEvt17, Action::kAr5, State::kSta1},
          });
}

TEST(StateMachine, ArtimExpiry) {
  EXPECT_EQ(next(State::kSta2, Event::kEvt18, Role::kAcceptor).action, Action::kAa2);
  EXPECT_EQ(next(State::kSta2, Event::kEvt18, Role::kAcceptor).next, State::kSta1);
  EXPECT_EQ(next(State::kSta13, Event::kEvt18, Role::kAcceptor).action, Action::kAa2);
  EXPECT_EQ(next(State::kSta13, Event::kEvt18, Role::kRequestor).next, State::kSta1);
}

TEST(StateMachine, AbortReceivedInSta6) {
  StateMachine sm(Role::kAcceptor, State::kSta6);
  run(sm, {{Event::kEvt16, Action::kAa3, State::kSta1}});
}

TEST(StateMachine, InvalidPduInSta6) {
  StateMachine sm(Role::kAcceptor, State::kSta6);
  run(sm, {{Event::kEvt19, Action::kAa8, State::kSta13},
           {Event::kEvt10, Action::kAa6, State::kSta13},  // PDUs ignored while closing
           {Event::kEvt6, Action::kAa7, State::kSta13},
           {Event::kEvt19, Action::kAa7, State::kSta13},
           {Event::kEvt16, Action::kAa2, State::kSta1}});
}

TEST(StateMachine, SecondAssociateRqAborts) {
  EXPECT_EQ(next(State::kSta6, Event::kEvt6, Role::kAcceptor).action, Action::kAa8);
  EXPECT_EQ(next(State::kSta3, Event::kEvt6, Role::kAcceptor).action, Action::kAa8);
}

TEST(StateMachine, LocalAbort) {
  for (const State s : {State::kSta3, State::kSta5, State::kSta6, State::kSta7, State::kSta8,
                        State::kSta9, State::kSta10, State::kSta11, State::kSta12}) {
    EXPECT_EQ(next(s, Event::kEvt15, Role::kRequestor).action, Action::kAa1) << name(s);
    EXPECT_EQ(next(s, Event::kEvt15, Role::kRequestor).next, State::kSta13) << name(s);
  }
  EXPECT_EQ(next(State::kSta4, Event::kEvt15, Role::kRequestor).action, Action::kAa2);
  EXPECT_EQ(next(State::kSta4, Event::kEvt15, Role::kRequestor).next, State::kSta1);
}

TEST(StateMachine, BlankCellsAreAa8) {
  for (const auto& [s, e] : std::vector<std::pair<State, Event>>{{State::kSta1, Event::kEvt10},
                                                                 {State::kSta6, Event::kEvt5},
                                                                 {State::kSta7, Event::kEvt9},
                                                                 {State::kSta13, Event::kEvt15},
                                                                 {State::kSta4, Event::kEvt16},
                                                                 {State::kSta6, Event::kEvt18}}) {
    const Transition t = next(s, e, Role::kAcceptor);
    EXPECT_EQ(t.action, Action::kAa8) << name(s) << " " << name(e);
    EXPECT_EQ(t.next, State::kSta13);
  }
  // Out-of-range values (a corrupted variable) are handled the same way.
  EXPECT_EQ(next(static_cast<State>(0), Event::kEvt1, Role::kAcceptor).action, Action::kAa8);
  EXPECT_EQ(next(State::kSta6, static_cast<Event>(20), Role::kAcceptor).action, Action::kAa8);
}

/// The next state every action implies (PS3.8 tables 9-6 to 9-9), independent of the table.
State expected_next(Action a, Role role) {
  switch (a) {
    case Action::kAe1:
      return State::kSta4;
    case Action::kAe2:
      return State::kSta5;
    case Action::kAe3:
    case Action::kAe7:
    case Action::kDt1:
    case Action::kDt2:
      return State::kSta6;
    case Action::kAe5:
      return State::kSta2;
    case Action::kAe6:
      return State::kSta3;
    case Action::kAr1:
    case Action::kAr6:
      return State::kSta7;
    case Action::kAr2:
    case Action::kAr7:
      return State::kSta8;
    case Action::kAr8:
      return role == Role::kRequestor ? State::kSta9 : State::kSta10;
    case Action::kAr9:
      return State::kSta11;
    case Action::kAr10:
      return State::kSta12;
    case Action::kAe4:
    case Action::kAr3:
    case Action::kAr5:
    case Action::kAa2:
    case Action::kAa3:
    case Action::kAa4:
    case Action::kAa5:
      return State::kSta1;
    case Action::kAe8:
    case Action::kAr4:
    case Action::kAa1:
    case Action::kAa6:
    case Action::kAa7:
    case Action::kAa8:
      return State::kSta13;
  }
  return State::kSta1;
}

TEST(StateMachine, EveryCellIsValid) {
  int defined = 0;
  std::set<std::string> action_names;
  for (int s = 1; s <= 13; ++s) {
    for (int e = 1; e <= 19; ++e) {
      for (const Role role : {Role::kRequestor, Role::kAcceptor}) {
        const auto state = static_cast<State>(s);
        const auto event = static_cast<Event>(e);
        const Transition t = next(state, event, role);
        ASSERT_LE(static_cast<int>(t.action), static_cast<int>(Action::kAa8));
        ASSERT_GE(static_cast<int>(t.next), 1);
        ASSERT_LE(static_cast<int>(t.next), 13);
        EXPECT_EQ(t.next, expected_next(t.action, role))
            << name(state) << " " << name(event) << " " << name(t.action);
        EXPECT_NE(name(t.action), "??");
        action_names.insert(std::string(name(t.action)));
        if (role == Role::kAcceptor && t.action != Action::kAa8) ++defined;
      }
    }
  }
  // Every action of the standard appears somewhere in the table.
  EXPECT_EQ(action_names.size(), 28u);
  // PS3.8 table 9-10 has 69 cells with an action other than AA-8 (a checksum on the table).
  EXPECT_EQ(defined, 69);
}

TEST(StateMachine, Names) {
  EXPECT_EQ(name(State::kSta1), "Sta1");
  EXPECT_EQ(name(State::kSta13), "Sta13");
  EXPECT_EQ(name(Event::kEvt10), "Evt10");
  EXPECT_EQ(name(Event::kEvt19), "Evt19");
  EXPECT_EQ(name(Action::kAa1), "AA-1");
  EXPECT_EQ(name(Action::kAr10), "AR-10");
  EXPECT_EQ(name(Action::kAe6), "AE-6");
  EXPECT_EQ(name(Action::kDt2), "DT-2");
}

}  // namespace
}  // namespace gw::dicom
