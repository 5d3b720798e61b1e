// Child process of crash_test.cc: appends to the store in a loop from several threads and
// reports each acknowledged append on stdout, until it is killed.
//
// Each append writes kEventsPerAppend events to the thread's own stream plus a state record
// holding the stream's new version, so the parent can tell a partial batch from a whole one.
// Output line per acknowledged append: "ack <stream> <last_version> <last_position>\n".

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crash_payload.h"
#include "crm/common/time.h"
#include "crm/eventstore/event_store.h"

namespace {

using crm::eventstore::AppendRequest;
using crm::eventstore::EventEnvelope;
using crm::eventstore::EventStore;
using crm::eventstore::Table;

void WriteLine(const std::string& line) {
  // One write(2) per line: atomic on a pipe (< PIPE_BUF), so the parent never reads half a line.
  if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    std::_Exit(3);
}

void AppendLoop(EventStore& store, int thread) {
  const std::string stream = absl::StrCat("t", thread);
  auto head = store.GetStreamHead(stream);
  if (!head.ok()) std::_Exit(4);
  int64_t version = head->has_value() ? (*head)->version : 0;
  while (true) {
    AppendRequest request{.stream_id = stream, .stream_type = "crash", .expected_version = version};
    for (int i = 1; i <= crm::eventstore::kEventsPerAppend; ++i) {
      EventEnvelope& event = request.events.emplace_back();
      event.mutable_payload()->set_type_url("type.googleapis.com/crm.test.v1.Crash");
      event.mutable_payload()->set_value(crm::eventstore::CrashPayload(stream, version + i));
      *event.mutable_occurred_at() = crm::ToProto(absl::FromUnixSeconds(1'700'000'000));
    }
    const int64_t next = version + crm::eventstore::kEventsPerAppend;
    request.writes = {{Table::kState, stream, absl::StrCat(next)},
                      {Table::kIndex, absl::StrCat(stream, "/", next), ""}};
    auto result = store.Append(std::move(request));
    if (!result.ok()) {
      std::fprintf(stderr, "append failed: %s\n", result.status().ToString().c_str());
      std::_Exit(5);
    }
    version = result->last_version;
    WriteLine(
        absl::StrCat("ack ", stream, " ", result->last_version, " ", result->last_position, "\n"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <store-dir> <threads>\n", argv[0]);
    return 2;
  }
  auto store = EventStore::Open(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "open failed: %s\n", store.status().ToString().c_str());
    return 1;
  }
  WriteLine("ready\n");
  std::vector<std::thread> threads;
  for (int t = 0; t < std::atoi(argv[2]); ++t)
    threads.emplace_back(AppendLoop, std::ref(**store), t);
  for (auto& thread : threads) thread.join();
  return 0;
}
