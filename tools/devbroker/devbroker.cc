// devbroker: a development and test Kafka broker. Hosts librdkafka's mock cluster in its own
// process (the mock dies with its host, so it cannot live inside a service), creates the
// service topics, publishes its address, and takes fault-injection commands on a loopback
// control port. See README.md.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm/kafka/mock_cluster.h"
#include "crm/kafka/mock_cluster_control.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

constexpr size_t kMaxLineBytes = 4096;

struct Flags {
  int brokers = 1;
  int partitions = 3;
  int replication_factor = 0;  // 0 = min(3, brokers)
  std::vector<std::string> topics = {"crm.contact.events.v1", "crm.activity.events.v1",
                                     "crm.pipeline.events.v1"};
  std::string addr_file = "data/broker.addr";
  int control_port = 0;
  std::string control_file = "data/broker.control";
};

// Readers poll for the file; a rename makes it appear whole or not at all.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::error_code error;
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("create directory for ", path, ": ", error.message()));
  }
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("write ", temp));
  }
  std::filesystem::rename(temp, target, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("rename ", temp, " to ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

// A listening TCP socket on 127.0.0.1 (never other interfaces: the port has no auth).
absl::StatusOr<int> ListenOnLoopback(int port, int* bound_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 16) != 0) {
    const int saved = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("control port 127.0.0.1:", port, ": ", std::strerror(saved)));
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *bound_port = ntohs(address.sin_port);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd writable{.fd = fd, .events = POLLOUT, .revents = 0};
      ::poll(&writable, 1, 1000);
    } else {
      return;  // the client went away; its socket is closed on the next read
    }
  }
}

struct Client {
  int fd = -1;
  std::string buffer;
};

// Reads what the client sent and answers every complete line. False when it should be closed.
bool ServeClient(crm::kafka::MockCluster& cluster, Client& client) {
  char chunk[1024];
  for (;;) {
    const ssize_t n = ::recv(client.fd, chunk, sizeof(chunk), 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    client.buffer.append(chunk, static_cast<size_t>(n));
    size_t newline;
    while ((newline = client.buffer.find('\n')) != std::string::npos) {
      const std::string line = client.buffer.substr(0, newline);
      client.buffer.erase(0, newline + 1);
      const std::string reply = crm::kafka::ExecuteControlCommand(cluster, line);
      spdlog::info("control: '{}' -> '{}'", line, reply);
      SendAll(client.fd, reply + "\n");
    }
    if (client.buffer.size() > kMaxLineBytes) {
      SendAll(client.fd, "error line too long\n");
      return false;
    }
  }
}

int Run(const Flags& flags) {
  // Block the signals we handle before any thread exists, so every librdkafka thread
  // inherits the mask and they arrive only through the signalfd.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) {
    spdlog::error("signalfd: {}", std::strerror(errno));
    return 1;
  }

  const int replication_factor =
      flags.replication_factor > 0 ? flags.replication_factor : std::min(3, flags.brokers);
  absl::StatusOr<std::unique_ptr<crm::kafka::MockCluster>> cluster =
      crm::kafka::MockCluster::Start(flags.brokers);
  if (!cluster.ok()) {
    spdlog::error("start mock cluster: {}", cluster.status().ToString());
    return 1;
  }
  for (const std::string& topic : flags.topics) {
    if (absl::Status status = (*cluster)->CreateTopic(topic, flags.partitions, replication_factor);
        !status.ok()) {
      spdlog::error("{}", status.ToString());
      return 1;
    }
  }

  int control_port = 0;
  absl::StatusOr<int> listen_fd = ListenOnLoopback(flags.control_port, &control_port);
  if (!listen_fd.ok()) {
    spdlog::error("{}", listen_fd.status().ToString());
    return 1;
  }
  // The control file first: whoever sees the address file may use the control port.
  const std::string& bootstrap = (*cluster)->bootstrap_servers();
  for (const auto& [path, content] :
       {std::pair{flags.control_file, absl::StrCat(control_port, "\n")},
        std::pair{flags.addr_file, absl::StrCat(bootstrap, "\n")}}) {
    if (absl::Status status = WriteFileAtomically(path, content); !status.ok()) {
      spdlog::error("{}", status.ToString());
      return 1;
    }
  }
  std::printf("bootstrap.servers=%s\n", bootstrap.c_str());
  std::fflush(stdout);
  spdlog::info(
      "devbroker up: {} broker(s), topics [{}] with {} partition(s), replication {}; "
      "control on 127.0.0.1:{}",
      flags.brokers, absl::StrJoin(flags.topics, ","), flags.partitions, replication_factor,
      control_port);

  std::vector<Client> clients;
  bool running = true;
  while (running) {
    std::vector<pollfd> fds = {{.fd = signal_fd, .events = POLLIN, .revents = 0},
                               {.fd = *listen_fd, .events = POLLIN, .revents = 0}};
    for (const Client& client : clients) {
      fds.push_back({.fd = client.fd, .events = POLLIN, .revents = 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGUSR1 || info.ssi_signo == SIGUSR2) {
          const bool down = info.ssi_signo == SIGUSR1;
          const absl::Status status =
              down ? (*cluster)->SetAllBrokersDown() : (*cluster)->SetAllBrokersUp();
          spdlog::info("signal {}: all brokers {}: {}", info.ssi_signo, down ? "down" : "up",
                       status.ToString());
        } else {
          spdlog::info("signal {}: shutting down", info.ssi_signo);
          running = false;
        }
      }
    }
    // Answer the clients polled this round (indices 2.. match clients[0..]).
    std::vector<Client> still_open;
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& client = clients[i];
      if (fds[i + 2].revents != 0 && !ServeClient(**cluster, client)) {
        ::close(client.fd);
        continue;
      }
      still_open.push_back(std::move(client));
    }
    clients = std::move(still_open);
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int fd = ::accept4(*listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        clients.push_back(Client{.fd = fd});
      }
    }
  }

  for (const Client& client : clients) ::close(client.fd);
  ::close(*listen_fd);
  ::close(signal_fd);
  // The address is only valid while this process runs.
  std::error_code ignored;
  std::filesystem::remove(flags.addr_file, ignored);
  std::filesystem::remove(flags.control_file, ignored);
  cluster->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // stdout carries exactly the one bootstrap.servers line; logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("devbroker"));

  Flags flags;
  CLI::App app{
      "Development Kafka broker: librdkafka's mock cluster in its own process.\n"
      "Prints `bootstrap.servers=<addr>`, writes the address to --addr-file and serves\n"
      "`down <id|all>`, `up <id|all>`, `rtt <id|all> <ms>`, `status` on the loopback control\n"
      "port. SIGUSR1 takes all brokers down, SIGUSR2 brings them up, SIGTERM/SIGINT exit."};
  app.add_option("--brokers", flags.brokers, "Number of brokers (ids 1..n)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  app.add_option("--partitions", flags.partitions, "Partitions per topic")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--replication-factor", flags.replication_factor,
                 "Replicas per partition (default: min(3, brokers))")
      ->check(CLI::Range(1, 32));
  app.add_option("--topics", flags.topics, "Topics to create, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--addr-file", flags.addr_file,
                 "File that receives the bootstrap address (written atomically)")
      ->capture_default_str();
  app.add_option("--control-port", flags.control_port,
                 "Loopback TCP port for control commands (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--control-file", flags.control_file, "File that receives the control port")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (flags.replication_factor > flags.brokers) {
    spdlog::error("--replication-factor {} exceeds --brokers {}", flags.replication_factor,
                  flags.brokers);
    return 2;
  }
  return Run(flags);
}
