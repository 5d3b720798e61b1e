#include "crm/kafka/mock_cluster_control.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace crm::kafka {
namespace {

constexpr absl::string_view kHelp = "down <id|all>; up <id|all>; rtt <id|all> <ms>; status; help";

std::string Reply(const absl::Status& status) {
  if (status.ok()) return "ok";
  // One line, whatever the message holds.
  std::string reason(status.message());
  for (char& c : reason) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrCat("error ", reason);
}

// Applies `one` to a broker id, or `all` for "all".
template <typename One, typename All>
absl::Status ForTarget(absl::string_view target, One one, All all) {
  if (target == "all") return all();
  int32_t id = 0;
  if (!absl::SimpleAtoi(target, &id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("broker: expected an id or 'all', got '", target, "'"));
  }
  return one(id);
}

}  // namespace

std::string DescribeBrokers(const MockCluster& cluster) {
  std::vector<std::string> parts;
  for (const BrokerState& broker : cluster.Brokers()) {
    parts.push_back(absl::StrCat(broker.id, ":", broker.up ? "up" : "down", ":",
                                 absl::ToInt64Milliseconds(broker.rtt)));
  }
  return absl::StrJoin(parts, " ");
}

std::string ExecuteControlCommand(MockCluster& cluster, std::string_view line) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(AsAbsl(line));
  const std::vector<absl::string_view> words = absl::StrSplit(trimmed, ' ', absl::SkipEmpty());
  if (words.empty()) return "error empty command";
  const absl::string_view command = words[0];

  if (command == "status" && words.size() == 1) {
    return absl::StrCat("ok ", DescribeBrokers(cluster));
  }
  if (command == "help" && words.size() == 1) return absl::StrCat("ok ", kHelp);
  if ((command == "down" || command == "up") && words.size() == 2) {
    const bool down = command == "down";
    return Reply(ForTarget(
        words[1],
        [&](int32_t id) { return down ? cluster.SetBrokerDown(id) : cluster.SetBrokerUp(id); },
        [&] { return down ? cluster.SetAllBrokersDown() : cluster.SetAllBrokersUp(); }));
  }
  if (command == "rtt" && words.size() == 3) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(words[2], &ms) || ms < 0) {
      return absl::StrCat("error rtt: expected milliseconds >= 0, got '", words[2], "'");
    }
    return Reply(ForTarget(
        words[1], [&](int32_t id) { return cluster.SetBrokerRtt(id, absl::Milliseconds(ms)); },
        [&] { return cluster.SetAllBrokersRtt(absl::Milliseconds(ms)); }));
  }
  return absl::StrCat("error unknown command '", trimmed, "' (commands: ", kHelp, ")");
}

}  // namespace crm::kafka
