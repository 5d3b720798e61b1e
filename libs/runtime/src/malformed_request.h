#pragma once

// gRPC C++ answers a request its handler cannot parse (invalid UTF-8 in a string field, bytes
// that are no protobuf message) with UNIMPLEMENTED and an empty message: the callback API
// drops the parse error. This interceptor makes it INVALID_ARGUMENT naming the field protobuf
// refused (in google.rpc.BadRequest), so such a request is answered like any other bad input.

#include <string>
#include <string_view>

#include "grpcpp/support/server_interceptor.h"

namespace crm::runtime {

class MalformedRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Routes protobuf's own log lines into the structured log, and so learns which string field
  // failed UTF-8 validation during a parse (protobuf reports it only there).
  MalformedRequestInterceptorFactory();

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

// The request field path ("contact.emails") of the field protobuf names by its full name
// ("crm.contact.v1.Contact.emails") in a request of method `method` ("/pkg.Service/Method");
// a map entry's key or value names the map. "" when the method or field is not known there.
std::string RequestFieldPath(std::string_view method, std::string_view field_full_name);

}  // namespace crm::runtime
