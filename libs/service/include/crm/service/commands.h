#pragma once

// The request plumbing every command service's handlers share: the checked metadata of a
// mutating request, derived ids, one command through the repository, and paginated index
// scans. Handlers stay a few lines of domain wiring.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "crm/common/field_violations.h"
#include "crm/common/ids.h"
#include "crm/common/status_macros.h"
#include "crm/common/time.h"
#include "crm/eventsourcing/repository.h"
#include "crm/eventstore/event_store.h"
#include "crm/runtime/auth.h"
#include "crm/runtime/call.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace crm::service {

inline constexpr size_t kMaxRequestId = 128;
inline constexpr size_t kMaxChannel = 64;

// SHA-256 (hex) of the message's deterministic serialization: a retry must be the same request.
std::string Fingerprint(const google::protobuf::Message& message);

// The id of a record created without one: derived from the request id, so that a retry hits
// the same stream (a random id would make every retry a new record); random without one.
// `prefix` starts the id ("c-"), `kind` separates the id spaces of record types.
std::string IdForCreate(std::string_view prefix, std::string_view kind,
                        const std::string& request_id);

// A stable id derived from `seed` alone: "<prefix><24 hex digits>".
std::string DerivedId(std::string_view prefix, std::string_view seed);

// The rep of a new record: the one given, else the acting user (KPIS.md); integrations are
// nobody's rep.
inline std::string OwnerOrCaller(const std::string& given, const runtime::Principal& principal) {
  if (!given.empty() || principal.kind != crm::common::v1::ACTOR_KIND_USER) return given;
  return principal.subject;
}

// The metadata every mutating request carries (request_id, channel, occurred_at), checked, for
// the stream of record `id`. Field violations name every offending field: RESOURCE_EXHAUSTED
// when one is too long, else INVALID_ARGUMENT. `version_field` is the request's name for
// `expected_version` (a merge has two, a pipeline calls it a revision).
template <typename Request>
absl::StatusOr<eventsourcing::CommandMeta> CommandMetaFor(
    const runtime::Principal& principal, const Request& request, std::string id,
    int64_t expected_version, std::string version_field = "expected_version") {
  std::vector<FieldViolation> too_large;
  std::vector<FieldViolation> invalid;
  if (request.request_id().size() > kMaxRequestId) {
    too_large.push_back({"request_id", absl::StrCat("longer than ", kMaxRequestId, " bytes")});
  }
  if (request.channel().size() > kMaxChannel) {
    too_large.push_back({"channel", absl::StrCat("longer than ", kMaxChannel, " bytes")});
  }
  if (expected_version < 0) invalid.push_back({std::move(version_field), "must not be negative"});
  std::optional<absl::Time> occurred_at;
  if (request.has_occurred_at()) {
    if (!IsValidTimestamp(request.occurred_at())) {
      invalid.push_back({"occurred_at", "not a valid time"});
    } else {
      occurred_at = FromProto(request.occurred_at());
    }
  }
  CRM_RETURN_IF_ERROR(FieldFaults(std::move(too_large), std::move(invalid)));
  std::string fingerprint;
  if (!request.request_id().empty()) {
    Request without_id = request;
    without_id.clear_request_id();
    fingerprint = Fingerprint(without_id);
  }
  return eventsourcing::CommandMeta{
      .stream_id = std::move(id),
      .expected_version = expected_version > 0 ? expected_version : eventstore::kAnyVersion,
      .request_id = request.request_id(),
      .request_fingerprint = std::move(fingerprint),
      .occurred_at = occurred_at,
      .actor_id = principal.subject,
      .actor_kind = principal.kind,
      .channel = request.channel()};
}

// Runs one command on record `id` and answers with the state it produced.
template <typename Aggregate, typename Request>
void Execute(eventsourcing::Repository<Aggregate>& repository, const runtime::Principal& principal,
             const Request& request, std::string id, int64_t expected_version,
             typename eventsourcing::Repository<Aggregate>::Decide decide,
             typename Aggregate::State* response, runtime::Finish finish) {
  auto meta = CommandMetaFor(principal, request, std::move(id), expected_version);
  if (!meta.ok()) return finish(meta.status());
  repository.Handle(
      *std::move(meta), std::move(decide),
      [response, finish = std::move(finish)](
          absl::StatusOr<eventsourcing::CommandResult<typename Aggregate::State>> result) {
        if (result.ok()) *response = result->after.state;
        finish(result.status());
      });
}

// A whole RPC for commands whose decision needs nothing but the record's state and the
// business time (complete, resolve): the request names the record in `id_field` and carries
// expected_version.
template <typename Aggregate, typename Request>
grpc::ServerUnaryReactor* TransitionAt(grpc::CallbackServerContext* context,
                                       const runtime::TokenVerifier& verifier,
                                       const runtime::Method& method, const Request* request,
                                       const std::string& id, const char* id_field,
                                       eventsourcing::Repository<Aggregate>& repository,
                                       typename eventsourcing::Repository<Aggregate>::Decide decide,
                                       typename Aggregate::State* response) {
  return runtime::Unary(context, verifier, method, *request,
                        [request, id, id_field, &repository, decide = std::move(decide), response](
                            const runtime::Principal& principal, runtime::Finish finish) {
                          if (absl::Status valid = ValidateId(id, id_field); !valid.ok())
                            return finish(valid);
                          Execute(repository, principal, *request, id, request->expected_version(),
                                  decide, response, std::move(finish));
                        });
}

// The same for decisions that need no business time.
template <typename Aggregate, typename Request>
grpc::ServerUnaryReactor* Transition(
    grpc::CallbackServerContext* context, const runtime::TokenVerifier& verifier,
    const runtime::Method& method, const Request* request, const std::string& id,
    const char* id_field, eventsourcing::Repository<Aggregate>& repository,
    std::function<absl::StatusOr<eventsourcing::Events>(
        const std::optional<eventsourcing::Versioned<typename Aggregate::State>>&)>
        decide,
    typename Aggregate::State* response) {
  return TransitionAt(
      context, verifier, method, request, id, id_field, repository,
      [decide = std::move(decide)](const auto& current, absl::Time) { return decide(current); },
      response);
}

// For Get methods: the id checked (malformed: INVALID_ARGUMENT on `field`), the record loaded,
// NOT_FOUND ("<what> <id> not found") when absent.
template <typename Aggregate>
absl::StatusOr<typename Aggregate::State> LoadExisting(
    const eventsourcing::Repository<Aggregate>& repository, const std::string& id,
    const std::string& field, const std::string& what) {
  CRM_RETURN_IF_ERROR(ValidateId(id, field));
  CRM_ASSIGN_OR_RETURN(auto current, repository.Load(id));
  if (!current) return absl::NotFoundError(absl::StrCat(what, " ", id, " not found"));
  return current->state;
}

// page_size: `fallback` when 0, INVALID_ARGUMENT outside 1..max.
absl::StatusOr<int> PageSize(int32_t requested, int fallback, int max);

// Page tokens are opaque to clients: web-safe base64 of a resume key.
std::string EncodePageToken(const std::string& resume_key);
absl::StatusOr<std::string> DecodePageToken(const std::string& token);  // "page_token" named

// What a page scan does with an index entry.
enum class Offer {
  kTaken,    // added to the page
  kSkipped,  // filtered out
  kDone,     // past the end of the range: the listing is complete
};

// One page of a listing: scans the index `prefixes` in key order from the token's resume key
// (or from `start_after` on the first page; a token of another listing is INVALID_ARGUMENT
// naming page_token), offering each entry's id (its key's last '/'
// segment) to `offer`, which loads, filters and adds it. At most 10 x page_size keys are read
// per page, so a sparse filter answers with fewer items and a token rather than scanning the
// whole index. Returns the next page token ("" when the listing is complete).
absl::StatusOr<std::string> ScanIndexPage(
    const eventstore::EventStore& store, const std::vector<std::string>& prefixes,
    const std::string& page_token, int page_size,
    const std::function<absl::StatusOr<Offer>(const std::string& key, const std::string& id)>&
        offer,
    const std::string& start_after = "");

// A listing's page of whole records: ScanIndexPage over `prefixes` with each id loaded from
// `repository` and appended to `out` when `keep` (if given) admits it. `past_end` (if given)
// ends the listing at the first key beyond a range of an ordered index.
template <typename Aggregate>
absl::StatusOr<std::string> PageOfRecords(
    const eventstore::EventStore& store, const eventsourcing::Repository<Aggregate>& repository,
    const std::vector<std::string>& prefixes, const std::string& page_token, int page_size,
    google::protobuf::RepeatedPtrField<typename Aggregate::State>* out,
    const std::function<bool(const typename Aggregate::State&)>& keep = nullptr,
    const std::string& start_after = "",
    const std::function<bool(const std::string& key)>& past_end = nullptr) {
  return ScanIndexPage(
      store, prefixes, page_token, page_size,
      [&](const std::string& key, const std::string& id) -> absl::StatusOr<Offer> {
        if (past_end && past_end(key)) return Offer::kDone;
        CRM_ASSIGN_OR_RETURN(auto found, repository.Load(id));
        if (!found || (keep && !keep(found->state))) return Offer::kSkipped;
        *out->Add() = std::move(found->state);
        return Offer::kTaken;
      },
      start_after);
}

}  // namespace crm::service
