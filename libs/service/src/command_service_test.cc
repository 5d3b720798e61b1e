// A command service as a process (the note test service): it serves once storage and relay
// are up, appends through the store, exports store and relay metrics, and on SIGTERM drains,
// publishes everything it stored, closes RocksDB and exits 0.

#include <csignal>

#include "absl/strings/str_cat.h"
#include "crm/eventstore/event_store.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/runtime/auth.h"
#include "crm/service/testing/v1/note.grpc.pb.h"
#include "crm/testing/service_process.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace {

using ::crm::testing::IsOk;
using ::crm::testing::Subprocess;
using ::testing::HasSubstr;

constexpr char kSecret[] = "command-service-test-secret-xxxxx";
constexpr char kTopic[] = "crm.note.events.v1";

class CommandServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = crm::kafka::MockCluster::Start(1);
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    ASSERT_THAT(cluster_->CreateTopic(kTopic, 3, 1), IsOk());
  }

  std::unique_ptr<crm::testing::ServiceProcess> Start() {
    auto server = std::make_unique<crm::testing::ServiceProcess>(std::vector<std::string>{
        CRM_NOTE_SERVER, "--plaintext", "--jwt-hs256-secret", kSecret, "--data-dir",
        dir_.Sub("note"), "--kafka-bootstrap", cluster_->bootstrap_servers()});
    EXPECT_TRUE(server->serving()) << server->process().DrainStderr();
    return server;
  }

  crm::testing::TempDir dir_;
  std::unique_ptr<crm::kafka::MockCluster> cluster_;
};

TEST_F(CommandServiceTest, ServesAppendsAndPublishesEverythingBeforeExitingOnSigterm) {
  auto server = Start();
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, {}, &response).ok());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  auto notes = crm::service::testing::v1::NoteService::NewStub(channel);
  const std::string token =
      *crm::runtime::SignHs256({.subject = "rep-7", .scopes = {"contacts:write"}}, kSecret);
  constexpr int kNotes = 30;
  for (int i = 1; i <= kNotes; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    crm::service::testing::v1::AddNoteRequest request;
    request.set_note_id(absl::StrCat("note-", i % 5));
    request.set_text(absl::StrCat("text ", i));
    crm::service::testing::v1::AddNoteResponse response;
    ASSERT_TRUE(notes->AddNote(&context, request, &response).ok());
    EXPECT_EQ(response.position(), i);
  }
  {  // Refused input stores nothing.
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    crm::service::testing::v1::AddNoteResponse response;
    EXPECT_EQ(notes->AddNote(&context, {}, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  auto metrics = crm::testing::HttpGet(server->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_THAT(*metrics, HasSubstr("crm_eventstore_events_appended_total 30"));
  EXPECT_THAT(*metrics, HasSubstr("crm_relay_lag_events{topic=\"crm.note.events.v1\"}"));
  EXPECT_THAT(*metrics, HasSubstr("crm_grpc_server_requests_total{code=\"INVALID_ARGUMENT\""));
  Subprocess promtool({"/usr/bin/promtool", "check", "metrics"}, true);
  promtool.WriteStdin(*metrics);
  promtool.CloseStdin();
  EXPECT_EQ(promtool.WaitForExitCode(), 0) << promtool.DrainStderr();

  server->process().Signal(SIGTERM);
  EXPECT_EQ(server->process().WaitForExitCode(), 0) << server->process().DrainStderr();

  // Everything stored was published, with the token's subject as actor.
  auto published = crm::kafka::ReadTopic(cluster_->bootstrap_servers(), kTopic, absl::Seconds(30));
  ASSERT_THAT(published, IsOk());
  std::set<int64_t> positions;
  for (const auto& message : *published) {
    crm::events::v1::EventEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(message.value));
    EXPECT_EQ(envelope.actor_id(), "rep-7");
    EXPECT_EQ(message.key, envelope.stream_id());
    positions.insert(envelope.position());
  }
  EXPECT_EQ(positions.size(), static_cast<size_t>(kNotes));
  EXPECT_EQ(*positions.rbegin(), kNotes);

  // RocksDB was closed cleanly and the relay's checkpoint covers the whole log.
  auto store = crm::eventstore::EventStore::Open(dir_.Sub("note"));
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->LastPosition(), kNotes);
  EXPECT_THAT((*store)->GetCheckpoint("relay"), crm::testing::IsOkAndHolds(kNotes));
}

TEST_F(CommandServiceTest, MissingKafkaSettingStopsWithOneLine) {
  Subprocess server({CRM_NOTE_SERVER, "--plaintext", "--jwt-hs256-secret", kSecret, "--data-dir",
                     dir_.Sub("note")});
  EXPECT_EQ(server.WaitForExitCode(), 2);
  EXPECT_THAT(server.DrainStderr(), HasSubstr("--kafka-bootstrap"));
}

}  // namespace
