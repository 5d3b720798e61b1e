#pragma once

// Evolve for the services' common aggregate shape: every event carries the record's full state
// after it (so consumers need no lookups), and the state has `version` and `update_time`.

#include "crm/eventstore/event_store.h"

namespace crm::eventsourcing {

// The state from whichever of `Events` the payload is (`state_of(event)` picks it out), then
// the stream version and the event's business time. Unknown event types change neither field
// but those two.
template <typename... Events, typename State, typename StateOf>
void EvolveFromFullState(State& state, const eventstore::EventEnvelope& event, StateOf state_of) {
  const google::protobuf::Any& payload = event.payload();
  (void)([&]() -> bool {
    Events e;
    if (!payload.Is<Events>() || !payload.UnpackTo(&e)) return false;
    state = state_of(e);
    return true;
  }() || ...);
  state.set_version(event.stream_version());
  *state.mutable_update_time() = event.occurred_at();
}

}  // namespace crm::eventsourcing
