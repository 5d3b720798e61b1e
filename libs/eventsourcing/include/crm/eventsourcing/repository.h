#pragma once

// The one generic command path of every service (decider pattern): a domain supplies a pure
// Decide (command + current state -> events | error) and a pure Evolve (state + event -> state);
// Repository does the rest: idempotent retries, business-time bounds, load, decide, evolve,
// and one atomic append of the events with the new state (write model) and the changes to the
// aggregate's read-model index entries.
//
// An aggregate type:
//   struct Contact {
//     using State = crm::contact::v1::ContactState;          // a protobuf message
//     static constexpr char kStreamType[] = "contact";
//     static void Evolve(State& state, const eventstore::EventEnvelope& event);
//     static std::vector<std::string> IndexKeys(const std::string& id, const State& state);
//   };
// Evolve may read the envelope's payload, occurred_at, actor and stream_version, never its
// stream_id, position or recorded_at (assigned by the store when the group commits).

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/common/v1/common.pb.h"
#include "crm/eventstore/event_store.h"
#include "google/protobuf/message.h"

namespace crm::eventsourcing {

// What every mutating request carries, plus the authenticated caller.
struct CommandMeta {
  std::string stream_id;
  int64_t expected_version = eventstore::kAnyVersion;  // the client's, or kAnyVersion
  std::string request_id;                              // idempotency key (may be empty)
  std::string request_fingerprint;                     // digest of the request
  std::optional<absl::Time> occurred_at;               // business time; default now
  std::string actor_id;                                // the token's subject, nothing else
  crm::common::v1::ActorKind actor_kind = crm::common::v1::ACTOR_KIND_USER;
  std::string channel;
  std::string correlation_id;
  std::string causation_id;
};

// Channels deliver late, clocks drift: how far business time may be from now.
struct BusinessTimeBounds {
  absl::Duration max_future = absl::Minutes(5);
  absl::Duration max_past = absl::Hours(24 * 400);
};

// INVALID_ARGUMENT (field "occurred_at") outside the bounds.
absl::Status CheckBusinessTime(absl::Time occurred_at, absl::Time now,
                               const BusinessTimeBounds& bounds);

template <typename State>
struct Versioned {
  State state;
  int64_t version = 0;
};

template <typename State>
struct CommandResult {
  Versioned<State> after;  // the state the command produced (for a retry: its first attempt's)
  eventstore::AppendResult append;
};

// A decision: domain events to record, in order.
using Events = std::vector<std::unique_ptr<google::protobuf::Message>>;

// The common decision: exactly one event.
inline Events Emit(std::unique_ptr<google::protobuf::Message> event) {
  Events events;
  events.push_back(std::move(event));
  return events;
}

// Non-template helpers (repository.cc).
namespace internal {
std::string StateKey(std::string_view stream_type, std::string_view id);
std::string EncodeState(int64_t version, const google::protobuf::Message& state);
absl::StatusOr<int64_t> DecodeState(const std::string& value, google::protobuf::Message& state);
eventstore::EventEnvelope Envelope(const CommandMeta& meta, absl::Time occurred_at,
                                   const google::protobuf::Message& event, int64_t version);
}  // namespace internal

template <typename Aggregate>
class Repository {
 public:
  using State = typename Aggregate::State;
  using Current = std::optional<Versioned<State>>;
  using Decide =
      std::function<absl::StatusOr<Events>(const Current& current, absl::Time occurred_at)>;
  using Done = std::function<void(absl::StatusOr<CommandResult<State>>)>;

  explicit Repository(eventstore::EventStore& store, BusinessTimeBounds bounds = {},
                      eventstore::Clock clock = absl::Now)
      : store_(store), bounds_(bounds), clock_(std::move(clock)) {}

  // The store's stream of an aggregate: "<stream_type>/<id>", so aggregates of different types
  // in one service never share a stream even when their ids are equal.
  static std::string StreamId(const std::string& id) {
    return absl::StrCat(Aggregate::kStreamType, "/", id);
  }

  // The write model: current state and version, nullopt when the stream does not exist.
  absl::StatusOr<Current> Load(const std::string& id) const {
    CRM_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                         store_.Get(eventstore::Table::kState, Key(id)));
    if (!raw) return std::nullopt;
    Versioned<State> loaded;
    CRM_ASSIGN_OR_RETURN(loaded.version, internal::DecodeState(*raw, loaded.state));
    return loaded;
  }

  // Folded from the stream: the events up to `version` (history, idempotent answers).
  absl::StatusOr<Current> LoadVersion(const std::string& id, int64_t version) const {
    return Fold(id, [version](const eventstore::EventEnvelope& e) {
      return e.stream_version() <= version;
    });
  }

  // Folded from the stream: the events whose business time is at or before `as_of` (business
  // time never goes backwards within a stream, so this is a prefix).
  absl::StatusOr<Current> LoadAsOf(const std::string& id, absl::Time as_of) const {
    return Fold(id, [as_of](const eventstore::EventEnvelope& e) {
      return FromProto(e.occurred_at()) <= as_of;
    });
  }

  // Runs a command. `done` is called exactly once, possibly on the store's writer thread.
  void Handle(CommandMeta meta, Decide decide, Done done) {
    Attempt(std::make_shared<Command>(Command{std::move(meta), std::move(decide), std::move(done)}),
            /*attempt=*/1);
  }

  // Handle, waiting for the answer. Blocking: for an executor thread, never for a gRPC
  // reaction or a store callback (the store's writer thread answers it).
  absl::StatusOr<CommandResult<State>> HandleAndWait(CommandMeta meta, Decide decide) {
    std::promise<absl::StatusOr<CommandResult<State>>> answer;
    std::future<absl::StatusOr<CommandResult<State>>> answered = answer.get_future();
    Handle(std::move(meta), std::move(decide),
           [&answer](absl::StatusOr<CommandResult<State>> result) {
             answer.set_value(std::move(result));
           });
    return answered.get();
  }

 private:
  struct Command {
    CommandMeta meta;
    Decide decide;
    Done done;
  };
  // Commands without a client expected version are retried on a lost race; each round lets
  // one contender of a stream win.
  static constexpr int kMaxAttempts = 8;

  std::string Key(const std::string& id) const {
    return internal::StateKey(Aggregate::kStreamType, id);
  }

  absl::StatusOr<Current> Fold(
      const std::string& id,
      const std::function<bool(const eventstore::EventEnvelope&)>& take) const {
    Current current;
    for (int64_t from = 1;;) {
      CRM_ASSIGN_OR_RETURN(std::vector<eventstore::EventEnvelope> events,
                           store_.ReadStream(StreamId(id), from, 1024));
      for (const auto& event : events) {
        if (!take(event)) return current;
        if (!current) current.emplace();
        Aggregate::Evolve(current->state, event);
        current->version = event.stream_version();
      }
      if (events.size() < 1024) return current;
      from = events.back().stream_version() + 1;
    }
  }

  void Attempt(std::shared_ptr<Command> command, int attempt) {
    absl::StatusOr<std::optional<CommandResult<State>>> replay = Replay(command->meta);
    if (!replay.ok()) return command->done(replay.status());
    if (replay->has_value()) return command->done(**std::move(replay));

    const CommandMeta& meta = command->meta;
    const absl::Time now = clock_();
    const absl::Time occurred_at = meta.occurred_at.value_or(now);
    if (absl::Status bounded = CheckBusinessTime(occurred_at, now, bounds_); !bounded.ok()) {
      return command->done(bounded);
    }
    absl::StatusOr<Current> current = Load(meta.stream_id);
    if (!current.ok()) return command->done(current.status());
    const int64_t version = *current ? (*current)->version : 0;
    if (meta.expected_version != eventstore::kAnyVersion && meta.expected_version != version) {
      return command->done(absl::AbortedError(
          absl::StrCat(Aggregate::kStreamType, " ", meta.stream_id, " is at version ", version,
                       ", the request expected ", meta.expected_version)));
    }
    absl::StatusOr<Events> events = command->decide(*current, occurred_at);
    if (!events.ok()) return command->done(events.status());
    if (events->empty()) {  // nothing to change: answer with the state as it is
      if (!*current) return command->done(absl::NotFoundError(meta.stream_id));
      return command->done(CommandResult<State>{.after = **current});
    }

    Versioned<State> after = current->value_or(Versioned<State>{});
    eventstore::AppendRequest append{.stream_id = StreamId(meta.stream_id),
                                     .stream_type = Aggregate::kStreamType,
                                     .expected_version = version,
                                     .request_id = meta.request_id,
                                     .request_fingerprint = meta.request_fingerprint};
    for (const auto& event : *events) {
      append.events.push_back(internal::Envelope(meta, occurred_at, *event, ++after.version));
      Aggregate::Evolve(after.state, append.events.back());
    }
    append.writes.push_back({eventstore::Table::kState, Key(meta.stream_id),
                             internal::EncodeState(after.version, after.state)});
    AddIndexChanges(meta.stream_id, *current, after.state, append.writes);

    store_.AppendAsync(
        std::move(append), [this, command, attempt, after = std::move(after)](
                               absl::StatusOr<eventstore::AppendResult> result) mutable {
          if (result.ok()) {
            if (result->replayed) {  // a concurrent retry of the same request won
              return Attempt(command, attempt);
            }
            return command->done(
                CommandResult<State>{.after = std::move(after), .append = *result});
          }
          if (result.status().code() == absl::StatusCode::kAborted &&
              command->meta.expected_version == eventstore::kAnyVersion && attempt < kMaxAttempts) {
            return Attempt(command, attempt + 1);  // lost a race the client did not ask to detect
          }
          command->done(result.status());
        });
  }

  // The first attempt's answer when request_id was seen before.
  absl::StatusOr<std::optional<CommandResult<State>>> Replay(const CommandMeta& meta) const {
    if (meta.request_id.empty()) return std::nullopt;
    CRM_ASSIGN_OR_RETURN(std::optional<eventstore::AppendResult> recorded,
                         store_.FindRequest(meta.request_id, meta.request_fingerprint));
    if (!recorded) return std::nullopt;
    if (recorded->stream_id != StreamId(meta.stream_id)) {
      return absl::AlreadyExistsError(absl::StrCat("request_id: ", meta.request_id,
                                                   " was already used for ", recorded->stream_id));
    }
    // Usually the retry comes before anything else changed the record: its stored state is
    // the answer, and only otherwise is the stream folded up to the recorded version.
    CRM_ASSIGN_OR_RETURN(Current then, Load(meta.stream_id));
    if (!then || then->version != recorded->last_version) {
      CRM_ASSIGN_OR_RETURN(then, LoadVersion(meta.stream_id, recorded->last_version));
    }
    if (!then) return absl::InternalError("recorded request without events");
    return CommandResult<State>{.after = *std::move(then), .append = *recorded};
  }

  void AddIndexChanges(const std::string& id, const Current& before, const State& after,
                       std::vector<eventstore::Write>& writes) const {
    absl::flat_hash_set<std::string> old_keys;
    if (before) {
      for (std::string& key : Aggregate::IndexKeys(id, before->state))
        old_keys.insert(std::move(key));
    }
    for (std::string& key : Aggregate::IndexKeys(id, after)) {
      if (!old_keys.erase(key)) writes.push_back({eventstore::Table::kIndex, std::move(key), ""});
    }
    for (const std::string& key : old_keys) {
      writes.push_back({eventstore::Table::kIndex, key, std::nullopt});
    }
  }

  eventstore::EventStore& store_;
  const BusinessTimeBounds bounds_;
  const eventstore::Clock clock_;
};

}  // namespace crm::eventsourcing
