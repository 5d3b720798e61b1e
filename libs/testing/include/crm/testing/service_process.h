#pragma once

// A service binary as a process, started with the given arguments, once it logged "serving"
// (its JSON log line carries the ports it bound).

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm/testing/subprocess.h"
#include "nlohmann/json.hpp"

namespace crm::testing {

class ServiceProcess {
 public:
  explicit ServiceProcess(std::vector<std::string> args)
      : process_(std::make_unique<Subprocess>(std::move(args))) {
    if (auto line = process_->WaitForStderr("\"msg\":\"serving\"")) {
      const auto parsed = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object() && parsed.contains("grpc_port")) {
        grpc_port_ = parsed["grpc_port"].get<int>();
        metrics_port_ = parsed["metrics_port"].get<int>();
      }
    }
  }

  // False when it never served (see process().DrainStderr()).
  bool serving() const { return grpc_port_ > 0; }
  std::string address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }
  int metrics_port() const { return metrics_port_; }
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace crm::testing
