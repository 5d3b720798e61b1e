#pragma once

// A fixed pool of threads with a bounded queue, for blocking work (outgoing calls, waits) that
// must never run on a gRPC callback thread. A full queue refuses work instead of growing.

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace crm::runtime {

class Executor {
 public:
  Executor(int threads, size_t max_queued);
  // Runs what is queued, then joins.
  ~Executor();

  // RESOURCE_EXHAUSTED when max_queued tasks are waiting; UNAVAILABLE once stopping.
  absl::Status Submit(std::function<void()> task);

 private:
  void Run();

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace crm::runtime
