#pragma once

// Test helpers for real processes: start a binary with piped stdout/stderr, read lines with a
// deadline, signal it, collect its exit status. And a minimal HTTP GET for /metrics scrapes.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace crm::testing {

// A loopback port free at the time of the call, for a process that takes its port as a flag.
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class Subprocess {
 public:
  // Starts argv[0] with argv; stdin is /dev/null unless `with_stdin`.
  explicit Subprocess(const std::vector<std::string>& argv, bool with_stdin = false) {
    int out[2], err[2], in[2] = {-1, -1};
    if (::pipe(out) != 0 || ::pipe(err) != 0 || (with_stdin && ::pipe(in) != 0)) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    if (with_stdin) {
      posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    }
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]}) {
      if (fd >= 0) posix_spawn_file_actions_addclose(&actions, fd);
    }
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    if (::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    stdout_.fd = out[0];
    stderr_.fd = err[0];
    if (with_stdin) {
      ::close(in[0]);
      stdin_fd_ = in[1];
    }
  }
  ~Subprocess() {
    if (running()) {
      Signal(SIGKILL);
      Wait();
    }
    for (int fd : {stdout_.fd, stderr_.fd, stdin_fd_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  bool running() const { return pid_ > 0 && !exit_status_; }
  pid_t pid() const { return pid_; }

  // The next line (without '\n'), or nullopt at EOF or when the deadline passes.
  std::optional<std::string> ReadStdoutLine(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return ReadLine(stdout_, timeout);
  }
  std::optional<std::string> ReadStderrLine(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return ReadLine(stderr_, timeout);
  }
  // Reads stderr until a line containing `needle`; returns it, or nullopt.
  std::optional<std::string> WaitForStderr(
      const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto line = ReadLine(stderr_, left);
      if (!line) return std::nullopt;
      if (line->find(needle) != std::string::npos) return line;
    }
  }
  // Everything left on stderr until EOF (after the process exited).
  std::string DrainStderr() {
    std::string all;
    while (auto line = ReadLine(stderr_, std::chrono::seconds(5))) all += *line + "\n";
    return all;
  }

  void WriteStdin(const std::string& text) {
    if (stdin_fd_ >= 0) {
      [[maybe_unused]] auto n = ::write(stdin_fd_, text.data(), text.size());
    }
  }
  void CloseStdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  void Signal(int signal) {
    if (running()) ::kill(pid_, signal);
  }
  // SIGSTOP, returning once every thread has stopped: kill() returns before that, and a busy
  // machine can let a thread serve one more request in between. False if it exited instead.
  bool Pause() {
    if (!running()) return false;
    ::kill(pid_, SIGSTOP);
    int status = 0;
    if (::waitpid(pid_, &status, WUNTRACED) != pid_) return false;
    if (!WIFSTOPPED(status)) exit_status_ = status;
    return WIFSTOPPED(status);
  }
  void Resume() { Signal(SIGCONT); }

  // Waits for exit; returns the raw wait status (use WIFEXITED/WEXITSTATUS/WTERMSIG).
  int Wait() {
    if (!exit_status_ && pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exit_status_ = status;
    }
    return exit_status_.value_or(-1);
  }
  // Exit code if it exited normally within `timeout`, else nullopt (then it is killed).
  std::optional<int> WaitForExitCode(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exit_status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        Signal(SIGKILL);
        Wait();
        return std::nullopt;
      }
      ::usleep(2000);
    }
    if (!WIFEXITED(*exit_status_)) return std::nullopt;
    return WEXITSTATUS(*exit_status_);
  }

 private:
  struct Stream {
    int fd = -1;
    std::string buffer;
  };

  static std::optional<std::string> ReadLine(Stream& stream, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (size_t newline = stream.buffer.find('\n'); newline != std::string::npos) {
        std::string line = stream.buffer.substr(0, newline);
        stream.buffer.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || stream.fd < 0) return std::nullopt;
      pollfd pfd{.fd = stream.fd, .events = POLLIN, .revents = 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(stream.fd, chunk, sizeof(chunk));
      if (n <= 0) {
        if (stream.buffer.empty()) return std::nullopt;
        std::string rest = std::move(stream.buffer);  // last line without '\n'
        stream.buffer.clear();
        return rest;
      }
      stream.buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  Stream stdout_;
  Stream stderr_;
  int stdin_fd_ = -1;
  std::optional<int> exit_status_;
};

// GET http://127.0.0.1:<port><path>; returns the body of a 200 answer, or nullopt.
inline std::optional<std::string> HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char chunk[8192];
      ssize_t n;
      while ((n = ::read(fd, chunk, sizeof(chunk))) > 0) response.append(chunk, n);
    }
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.1 200", 0) != 0 && response.rfind("HTTP/1.0 200", 0) != 0) {
    return std::nullopt;
  }
  if (body == std::string::npos) return std::nullopt;
  return response.substr(body + 4);
}

}  // namespace crm::testing
