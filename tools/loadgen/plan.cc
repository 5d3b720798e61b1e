#include "plan.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace crm::loadgen {

const std::vector<MixEntry>& DemoMix() {
  // make demo --dry-run (56,095 commands): CreateContact 37%, LogActivity 20%, CreateAccount
  // 9%, ScheduleTask 6%, CompleteTask 5%, CaptureLead 4%, MoveOpportunityStage 3%,
  // Qualify/DisqualifyLead 3%, CloseOpportunity 1.5%, Open/ConvertLead 2%, cases 1% each.
  static const auto* mix = new std::vector<MixEntry>{
      {"CreateContact", 33},   {"CreateAccount", 8},   {"CaptureLead", 4},
      {"QualifyLead", 3},      {"LogActivity", 20},    {"ScheduleTask", 6},
      {"CompleteTask", 5},     {"OpenOpportunity", 2}, {"MoveOpportunityStage", 3},
      {"CloseOpportunity", 2}, {"OpenCase", 1},        {"ResolveCase", 1},
      {"GetContact", 8},       {"QueryKpi", 4}};
  return *mix;
}

absl::StatusOr<std::vector<MixEntry>> ParseMix(absl::string_view text,
                                               const std::vector<std::string>& known) {
  if (text == "demo") return DemoMix();
  std::vector<MixEntry> mix;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    MixEntry entry{std::string(absl::StripAsciiWhitespace(kv.first)), 1};
    if (std::find(known.begin(), known.end(), entry.method) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--mix: unknown method \"", entry.method,
                                                     "\"; known: ", absl::StrJoin(known, ", ")));
    }
    if (!kv.second.empty() &&
        (!absl::SimpleAtod(kv.second, &entry.weight) || !(entry.weight > 0))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix: the weight of ", entry.method, " must be a positive number"));
    }
    mix.push_back(std::move(entry));
  }
  if (mix.empty()) return absl::InvalidArgumentError("--mix: no method given");
  return mix;
}

MixPicker::MixPicker(const std::vector<MixEntry>& mix) {
  double total = 0;
  for (const MixEntry& entry : mix) total += entry.weight;
  double sum = 0;
  for (const MixEntry& entry : mix) cumulative_.push_back((sum += entry.weight) / total);
}

int MixPicker::Pick(double u) const {
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  return static_cast<int>(std::min<ptrdiff_t>(it - cumulative_.begin(), cumulative_.size() - 1));
}

int64_t OpenSchedule::Intended(int64_t i) const {
  return start_ns_ + std::llround(static_cast<double>(i) * interval_ns_);
}

int64_t OpenSchedule::DueBy(int64_t now_ns) const {
  if (now_ns < start_ns_) return 0;
  int64_t n = static_cast<int64_t>(static_cast<double>(now_ns - start_ns_) / interval_ns_) + 1;
  // Rounding in Intended() may differ by one from the division; Intended() is the truth.
  while (n > 0 && Intended(n - 1) > now_ns) --n;
  while (Intended(n) <= now_ns) ++n;
  return n;
}

}  // namespace crm::loadgen
