#include "crm/kafka/mock_cluster_control.h"

#include <memory>
#include <string>

#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::kafka {
namespace {

using ::testing::StartsWith;

// Suite names carry the module in lower case: ctest -R filters are case-sensitive.

struct Step {
  std::string command;
  std::string reply;  // exact, or a prefix when it ends in '*'
};

TEST(mock_cluster_control, AnswersEachCommandOnOneLine) {
  absl::StatusOr<std::unique_ptr<MockCluster>> cluster = MockCluster::Start(2);
  ASSERT_THAT(cluster, crm::testing::IsOk());
  const Step steps[] = {
      {"status", "ok 1:up:0 2:up:0"},
      {"down 2", "ok"},
      {"status", "ok 1:up:0 2:down:0"},
      {"  up   2  ", "ok"},
      {"down all", "ok"},
      {"status", "ok 1:down:0 2:down:0"},
      {"up all", "ok"},
      {"rtt 2 25", "ok"},
      {"status", "ok 1:up:0 2:up:25"},
      {"rtt all 0", "ok"},
      {"status\r", "ok 1:up:0 2:up:0"},
      {"help", "ok down*"},
      // Failures name the problem and change nothing.
      {"down 3", "error broker 3: no such broker*"},
      {"down x", "error broker: expected an id or 'all'*"},
      {"rtt 1 -5", "error rtt: expected milliseconds*"},
      {"rtt 1", "error unknown command 'rtt 1'*"},
      {"status now", "error unknown command*"},
      {"reboot", "error unknown command 'reboot'*"},
      {"", "error empty command"},
      {"status", "ok 1:up:0 2:up:0"},
  };
  for (const Step& step : steps) {
    const std::string reply = ExecuteControlCommand(**cluster, step.command);
    if (!step.reply.empty() && step.reply.back() == '*') {
      EXPECT_THAT(reply, StartsWith(step.reply.substr(0, step.reply.size() - 1)))
          << "command: " << step.command;
    } else {
      EXPECT_EQ(reply, step.reply) << "command: " << step.command;
    }
    EXPECT_EQ(reply.find('\n'), std::string::npos) << "command: " << step.command;
  }
}

}  // namespace
}  // namespace crm::kafka
