// A command service with one RPC, for the command-service tests: what every real service's
// main() looks like, and a handler that appends without blocking a gRPC thread.

#include "crm/common/time.h"
#include "crm/runtime/call.h"
#include "crm/runtime/status.h"
#include "crm/service/command_service.h"
#include "crm/service/testing/v1/note.grpc.pb.h"

namespace {

using crm::service::testing::v1::AddNoteRequest;
using crm::service::testing::v1::AddNoteResponse;

constexpr crm::runtime::Method kAddNote{"crm.service.testing.v1.NoteService/AddNote",
                                        "contacts:write"};

class NoteService final : public crm::service::testing::v1::NoteService::CallbackService {
 public:
  explicit NoteService(crm::service::CommandServiceContext& context) : context_(context) {}

  grpc::ServerUnaryReactor* AddNote(grpc::CallbackServerContext* call,
                                    const AddNoteRequest* request,
                                    AddNoteResponse* response) override {
    return crm::runtime::Unary(
        call, *context_.verifier, kAddNote, *request,
        [this, request, response](const crm::runtime::Principal& principal,
                                  crm::runtime::Finish finish) {
          if (request->note_id().empty()) {
            return finish(crm::runtime::InvalidField("note_id", "must not be empty"));
          }
          crm::eventstore::AppendRequest append{.stream_id = request->note_id(),
                                                .stream_type = "note",
                                                .request_id = request->request_id()};
          auto& event = append.events.emplace_back();
          crm::service::testing::v1::NoteAdded added;
          added.set_text(request->text());
          event.mutable_payload()->PackFrom(added);
          *event.mutable_occurred_at() = crm::ToProto(absl::Now());
          event.set_actor_id(principal.subject);
          event.set_actor_kind(principal.kind);
          event.set_channel("test");
          context_.store.AppendAsync(
              std::move(append),
              [response, finish](absl::StatusOr<crm::eventstore::AppendResult> r) {
                if (r.ok()) {
                  response->set_position(r->last_position);
                  response->set_version(r->last_version);
                }
                finish(r.status());
              });
        });
  }

 private:
  crm::service::CommandServiceContext& context_;
};

}  // namespace

int main(int argc, char** argv) {
  return crm::service::RunCommandService(
      argc, argv,
      {.name = "note",
       .topic = "crm.note.events.v1",
       .grpc_listen = "127.0.0.1:0",
       .metrics_listen = "127.0.0.1:0",
       .make_services = [](crm::service::CommandServiceContext& context)
           -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
         std::vector<std::unique_ptr<grpc::Service>> services;
         services.push_back(std::make_unique<NoteService>(context));
         return services;
       }});
}
