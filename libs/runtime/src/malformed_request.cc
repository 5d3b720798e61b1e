#include "malformed_request.h"

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/runtime/log.h"
#include "crm/runtime/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/stubs/logging.h"

namespace crm::runtime {
namespace {

namespace pb = google::protobuf;
using grpc::experimental::InterceptionHookPoints;

// The string field whose UTF-8 check failed in the last parse on this thread. gRPC parses a
// request and runs the interceptors' POST_RECV_MESSAGE hook on the same thread, one after
// the other, and the hook always takes (clears) it.
thread_local std::string last_utf8_field;

std::string TakeUtf8Field() { return std::exchange(last_utf8_field, {}); }

// "String field 'crm.contact.v1.Contact.given_name' contains invalid UTF-8 data when parsing a
// protocol buffer. ..." (protobuf 3.21, wire_format_lite.cc); the name is what we need.
std::string Utf8FieldOf(const std::string& message) {
  constexpr std::string_view kPrefix = "String field '";
  if (message.rfind(kPrefix, 0) != 0 ||
      !absl::StrContains(message, "invalid UTF-8 data when parsing")) {
    return "";
  }
  const size_t end = message.find('\'', kPrefix.size());
  return end == std::string::npos ? "" : message.substr(kPrefix.size(), end - kPrefix.size());
}

void ProtobufLog(pb::LogLevel level, const char* filename, int line, const std::string& message) {
  if (std::string field = Utf8FieldOf(message); !field.empty()) {
    last_utf8_field = std::move(field);  // a client's fault, answered and logged per request
    return;
  }
  const spdlog::level::level_enum ours = level == pb::LOGLEVEL_INFO      ? spdlog::level::info
                                         : level == pb::LOGLEVEL_WARNING ? spdlog::level::warn
                                                                         : spdlog::level::err;
  Log(ours, "protobuf", {{"detail", message}, {"source", absl::StrCat(filename, ":", line)}});
}

// Depth-first through the request type; `open` guards against recursive message types.
bool FindPath(const pb::Descriptor& type, std::string_view target, const std::string& prefix,
              std::vector<const pb::Descriptor*>& open, std::string& path) {
  for (int i = 0; i < type.field_count(); ++i) {
    const pb::FieldDescriptor& field = *type.field(i);
    const std::string here = prefix.empty() ? field.name() : absl::StrCat(prefix, ".", field.name());
    if (field.full_name() == target) {
      path = here;
      return true;
    }
    const pb::Descriptor* inner = field.message_type();
    if (inner == nullptr) continue;
    if (field.is_map()) {
      if (inner->map_key()->full_name() == target || inner->map_value()->full_name() == target) {
        path = here;
        return true;
      }
      inner = inner->map_value()->message_type();
      if (inner == nullptr) continue;
    }
    if (std::find(open.begin(), open.end(), inner) != open.end()) continue;
    open.push_back(inner);
    const bool found = FindPath(*inner, target, here, open, path);
    open.pop_back();
    if (found) return true;
  }
  return false;
}

// "/crm.contact.v1.ContactService/CreateContact", as gRPC names it.
const pb::MethodDescriptor* MethodOf(std::string_view method) {
  std::string name(method.substr(method.rfind('/', 0) == 0 ? 1 : 0));
  std::replace(name.begin(), name.end(), '/', '.');
  return pb::DescriptorPool::generated_pool()->FindMethodByName(name);
}

class MalformedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      unparsed_ = methods->GetRecvMessage() == nullptr;
      utf8_field_ = TakeUtf8Field();
    }
    // gRPC's own answer to an unparsed request is UNIMPLEMENTED; a handler never ran.
    if (unparsed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      const absl::Status status = Refusal();
      Log(spdlog::level::info, "request",
          {{"method", method_.substr(method_.empty() ? 0 : 1)},
           {"code", absl::StatusCodeToString(status.code())},
           {"error", std::string(status.message())}});
      methods->ModifySendStatus(ToGrpcStatus(status));
    }
    methods->Proceed();
  }

 private:
  absl::Status Refusal() const {
    if (!utf8_field_.empty()) {
      const std::string path = RequestFieldPath(method_, utf8_field_);
      return InvalidField(path.empty() ? utf8_field_ : path, "must be valid UTF-8");
    }
    const pb::MethodDescriptor* method = MethodOf(method_);
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ",
                     method != nullptr ? method->input_type()->full_name() : "request",
                     " message"));
  }

  std::string method_;
  bool unparsed_ = false;
  std::string utf8_field_;
};

}  // namespace

MalformedRequestInterceptorFactory::MalformedRequestInterceptorFactory() {
  static std::once_flag installed;
  std::call_once(installed, [] { pb::SetLogHandler(&ProtobufLog); });
}

grpc::experimental::Interceptor* MalformedRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MalformedRequestInterceptor(info->method());
}

std::string RequestFieldPath(std::string_view method, std::string_view field_full_name) {
  const pb::MethodDescriptor* found = MethodOf(method);
  if (found == nullptr) return "";
  std::vector<const pb::Descriptor*> open = {found->input_type()};
  std::string path;
  return FindPath(*found->input_type(), field_full_name, "", open, path) ? path : "";
}

}  // namespace crm::runtime
