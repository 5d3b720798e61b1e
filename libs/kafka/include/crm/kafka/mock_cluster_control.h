#pragma once

// The line protocol tools/devbroker serves on its loopback control port, kept here so it is
// unit tested without a process or a socket.
//
//   down <id|all>        take broker(s) down          -> ok
//   up <id|all>          bring broker(s) back         -> ok
//   rtt <id|all> <ms>    add response latency         -> ok
//   status               list brokers                 -> ok <id>:<up|down>:<rtt_ms> ...
//   help                 list commands                -> ok <commands>
//
// Anything else, or a failing command, answers `error <reason>`. Replies are one line.

#include <string>
#include <string_view>

#include "crm/kafka/mock_cluster.h"

namespace crm::kafka {

// Runs one command line (without its newline) and returns the reply (without newline).
std::string ExecuteControlCommand(MockCluster& cluster, std::string_view line);

// The `status` reply body: "<id>:<up|down>:<rtt_ms>" per broker, space-separated.
std::string DescribeBrokers(const MockCluster& cluster);

}  // namespace crm::kafka
