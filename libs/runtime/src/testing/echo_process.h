#pragma once

// Test helper: the echo_server binary as a process (plaintext, HS256 secret), with the ports
// it printed once serving.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/testing/subprocess.h"

namespace crm::runtime {

class EchoProcess {
 public:
  EchoProcess(const std::string& binary, const std::string& secret,
              std::vector<std::string> extra_args = {})
      : process_(Args(binary, secret, std::move(extra_args))) {
    if (auto ports = process_.ReadStdoutLine()) {
      std::sscanf(ports->c_str(), "grpc_port=%d metrics_port=%d", &grpc_port_, &metrics_port_);
    }
  }

  // False when the server did not come up (then see process().DrainStderr()).
  bool serving() const { return grpc_port_ > 0; }
  std::string address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }
  int metrics_port() const { return metrics_port_; }
  crm::testing::Subprocess& process() { return process_; }

 private:
  static std::vector<std::string> Args(const std::string& binary, const std::string& secret,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {binary, "--plaintext", "--jwt-hs256-secret", secret};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  crm::testing::Subprocess process_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace crm::runtime
