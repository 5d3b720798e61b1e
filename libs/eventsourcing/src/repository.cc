#include "crm/eventsourcing/repository.h"

#include "absl/strings/str_cat.h"
#include "crm/common/time.h"
#include "crm/common/uuid.h"

namespace crm::eventsourcing {

absl::Status CheckBusinessTime(absl::Time occurred_at, absl::Time now,
                               const BusinessTimeBounds& bounds) {
  if (occurred_at > now + bounds.max_future) {
    return absl::InvalidArgumentError(absl::StrCat(
        "occurred_at: more than ", absl::FormatDuration(bounds.max_future), " in the future"));
  }
  if (occurred_at < now - bounds.max_past) {
    return absl::InvalidArgumentError(absl::StrCat(
        "occurred_at: more than ", absl::FormatDuration(bounds.max_past), " in the past"));
  }
  return absl::OkStatus();
}

namespace internal {

std::string StateKey(std::string_view stream_type, std::string_view id) {
  return absl::StrCat(std::string(stream_type), "/", std::string(id));
}

// Version (big-endian, 8 bytes) then the state message.
std::string EncodeState(int64_t version, const google::protobuf::Message& state) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>(static_cast<uint64_t>(version) >> (56 - 8 * i));
  state.AppendToString(&out);
  return out;
}

absl::StatusOr<int64_t> DecodeState(const std::string& value, google::protobuf::Message& state) {
  if (value.size() < 8) return absl::DataLossError("corrupt aggregate state");
  uint64_t version = 0;
  for (int i = 0; i < 8; ++i) version = (version << 8) | static_cast<unsigned char>(value[i]);
  if (!state.ParseFromArray(value.data() + 8, static_cast<int>(value.size() - 8))) {
    return absl::DataLossError("corrupt aggregate state");
  }
  return static_cast<int64_t>(version);
}

eventstore::EventEnvelope Envelope(const CommandMeta& meta, absl::Time occurred_at,
                                   const google::protobuf::Message& event, int64_t version) {
  eventstore::EventEnvelope envelope;
  envelope.set_event_id(NewUuid());
  envelope.set_stream_version(version);
  *envelope.mutable_occurred_at() = ToProto(occurred_at);
  envelope.set_actor_id(meta.actor_id);
  envelope.set_actor_kind(meta.actor_kind);
  envelope.set_channel(meta.channel);
  envelope.set_correlation_id(meta.correlation_id.empty() ? meta.request_id : meta.correlation_id);
  envelope.set_causation_id(meta.causation_id.empty() ? meta.request_id : meta.causation_id);
  envelope.set_request_id(meta.request_id);
  envelope.mutable_payload()->PackFrom(event);
  return envelope;
}

}  // namespace internal
}  // namespace crm::eventsourcing
