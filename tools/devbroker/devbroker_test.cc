// Runs the built devbroker binary as a child process and drives it like `make run` and the
// system tests do: address file, Kafka protocol, control port, signals.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "crm/kafka/consumer.h"
#include "crm/kafka/producer.h"
#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace crm::kafka {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::IsOkAndHolds;
using ::crm::testing::TempDir;
using ::crm::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kTopic[] = "crm.test.events.v1";

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// The child process with its stdout on a pipe; killed if the test ends early.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(CRM_DEVBROKER));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, CRM_DEVBROKER, &actions, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    stdout_ = out[0];
  }
  ~Child() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
  }

  pid_t pid() const { return pid_; }

  // Reads one line of the child's stdout, waiting at most `timeout`.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const size_t newline = out_.find('\n'); newline != std::string::npos) {
        std::string line = out_.substr(0, newline);
        out_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd readable{.fd = stdout_, .events = POLLIN, .revents = 0};
      if (::poll(&readable, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[256];
      const ssize_t n = ::read(stdout_, chunk, sizeof(chunk));
      if (n <= 0) return std::nullopt;
      out_.append(chunk, static_cast<size_t>(n));
    }
  }

  // The exit status once the child exited, without blocking.
  std::optional<int> ExitStatus() {
    if (!exit_status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
    }
    return exit_status_;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  std::string out_;
  std::optional<int> exit_status_;
};

// One connection to the control port; Send() returns the one-line reply.
class ControlClient {
 public:
  explicit ControlClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~ControlClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  std::string Send(const std::string& command) {
    const std::string line = command + "\n";
    if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
      return "<send failed>";
    }
    std::string reply;
    char c;
    while (reply.size() < 4096) {
      pollfd readable{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&readable, 1, 10'000) <= 0 || ::read(fd_, &c, 1) != 1) return "<no reply>";
      if (c == '\n') return reply;
      reply.push_back(c);
    }
    return reply;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Suite names carry the module in lower case: ctest -R filters are case-sensitive.

TEST(devbroker, HelpExitsZero) {
  Child child({"--help"});
  ASSERT_GT(child.pid(), 0);
  const std::optional<std::string> first = child.ReadLine(std::chrono::seconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(*first, HasSubstr("Development Kafka broker"));
  ASSERT_TRUE(WaitFor([&] { return child.ExitStatus().has_value(); }));
  EXPECT_TRUE(WIFEXITED(*child.ExitStatus()));
  EXPECT_EQ(WEXITSTATUS(*child.ExitStatus()), 0);
}

TEST(devbroker, RefusesBadFlags) {
  Child child({"--brokers", "0"});
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return child.ExitStatus().has_value(); }));
  EXPECT_TRUE(WIFEXITED(*child.ExitStatus()));
  EXPECT_NE(WEXITSTATUS(*child.ExitStatus()), 0);
}

TEST(devbroker, ServesKafkaAndControlAndExitsCleanly) {
  TempDir dir;
  const std::string addr_file = dir.Sub("run/broker.addr");  // parent created by devbroker
  const std::string control_file = dir.Sub("run/broker.control");
  Child child({"--brokers", "2", "--partitions", "2", "--topics", kTopic, "--addr-file", addr_file,
               "--control-file", control_file, "--control-port", "0"});
  ASSERT_GT(child.pid(), 0);

  std::optional<std::string> addr;
  ASSERT_TRUE(
      WaitFor([&] { return (addr = ReadFile(addr_file)).has_value(); }, std::chrono::seconds(20)));
  const std::string bootstrap(absl::StripAsciiWhitespace(*addr));
  ASSERT_THAT(bootstrap, StartsWith("127.0.0.1:"));
  const std::optional<std::string> printed = child.ReadLine(std::chrono::seconds(10));
  ASSERT_TRUE(printed.has_value());
  EXPECT_EQ(*printed, "bootstrap.servers=" + bootstrap);

  const std::optional<std::string> control = ReadFile(control_file);
  ASSERT_TRUE(control.has_value());
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(*control), &port)) << *control;
  ControlClient client(port);
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.Send("status"), "ok 1:up:0 2:up:0");

  // Produce and consume through it.
  std::vector<DeliveryReport> reports;
  absl::StatusOr<std::unique_ptr<Producer>> producer =
      Producer::Create(ProducerOptions{.bootstrap_servers = bootstrap,
                                       .settings = {{"reconnect.backoff.max.ms", "100"}}},
                       [&](const DeliveryReport& report) { reports.push_back(report); });
  ASSERT_THAT(producer, IsOk());
  const auto delivered = [&](size_t count) {
    return WaitFor(
        [&] {
          (*producer)->Poll(absl::Milliseconds(10));
          return reports.size() >= count;
        },
        std::chrono::seconds(20));
  };
  ASSERT_THAT((*producer)->Produce(kTopic, "contact-1", "before", {}, 1), IsOk());
  ASSERT_TRUE(delivered(1));
  EXPECT_THAT(reports[0].status, IsOk());
  absl::StatusOr<std::vector<Message>> messages = ReadTopic(bootstrap, kTopic, absl::Seconds(20));
  ASSERT_THAT(messages, IsOkAndHolds(SizeIs(1)));
  EXPECT_EQ((*messages)[0].value, "before");

  // All brokers down: the record waits; up again: it is delivered.
  EXPECT_EQ(client.Send("down all"), "ok");
  EXPECT_EQ(client.Send("status"), "ok 1:down:0 2:down:0");
  ASSERT_THAT((*producer)->Produce(kTopic, "contact-1", "after", {}, 2), IsOk());
  EXPECT_EQ(client.Send("up all"), "ok");
  EXPECT_EQ(client.Send("status"), "ok 1:up:0 2:up:0");
  ASSERT_TRUE(delivered(2));
  EXPECT_THAT(reports[1].status, IsOk());
  messages = ReadTopic(bootstrap, kTopic, absl::Seconds(20));
  ASSERT_THAT(messages, IsOkAndHolds(SizeIs(2)));
  EXPECT_EQ((*messages)[1].value, "after");

  EXPECT_EQ(client.Send("rtt 1 5"), "ok");
  EXPECT_EQ(client.Send("status"), "ok 1:up:5 2:up:0");
  EXPECT_THAT(client.Send("down 7"), StartsWith("error "));
  EXPECT_THAT(client.Send("reboot"), StartsWith("error unknown command"));

  // SIGUSR1 / SIGUSR2: all down / all up.
  ASSERT_EQ(::kill(child.pid(), SIGUSR1), 0);
  ASSERT_TRUE(WaitFor([&] { return client.Send("status") == "ok 1:down:5 2:down:0"; }));
  ASSERT_EQ(::kill(child.pid(), SIGUSR2), 0);
  ASSERT_TRUE(WaitFor([&] { return client.Send("status") == "ok 1:up:5 2:up:0"; }));

  producer->reset();
  ASSERT_EQ(::kill(child.pid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return child.ExitStatus().has_value(); }, std::chrono::seconds(20)));
  ASSERT_TRUE(WIFEXITED(*child.ExitStatus()));
  EXPECT_EQ(WEXITSTATUS(*child.ExitStatus()), 0);
  EXPECT_FALSE(std::filesystem::exists(addr_file));  // a stale address is never left behind
}

}  // namespace
}  // namespace crm::kafka
