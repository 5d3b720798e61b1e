// Health and reflection of a real service process, through the standard protocols only (this
// binary links no part of the runtime): what grpcurl, buf curl or a load balancer would see.

#include "echo_process.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace {

using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;
using ::testing::IsSupersetOf;

class EchoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.serving()) << server_.process().DrainStderr();
    channel_ = grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials());
  }

  crm::runtime::EchoProcess server_{CRM_ECHO_SERVER, "reflection-test-secret"};
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(EchoServerTest, ReflectionListsAndDescribesTheServicesWithoutAToken) {
  auto stub = ServerReflection::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);

  ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> names;
  for (const auto& service : listed.list_services_response().service())
    names.push_back(service.name());
  EXPECT_THAT(names, IsSupersetOf({"crm.runtime.testing.v1.EchoService", "grpc.health.v1.Health",
                                   "grpc.reflection.v1alpha.ServerReflection"}));

  ServerReflectionRequest describe;
  describe.set_file_containing_symbol("crm.runtime.testing.v1.EchoService");
  ASSERT_TRUE(stream->Write(describe));
  ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  EXPECT_GT(described.file_descriptor_response().file_descriptor_proto_size(), 0)
      << "generic clients can build requests from the served descriptors";
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(EchoServerTest, HealthSaysServingOnceStarted) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(stub->Check(&context, {}, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
