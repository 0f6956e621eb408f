#include "server/raw_message.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <vector>

namespace softserve::server {
namespace {

// The last error protobuf logged on this thread while ParseMessage was parsing.
thread_local std::string* t_parse_errors = nullptr;

void OnProtobufLog(google::protobuf::LogLevel level, const char* filename, int line, const std::string& message) {
  if (t_parse_errors != nullptr) {
    if (!t_parse_errors->empty()) *t_parse_errors += "; ";
    *t_parse_errors += message;
    return;
  }
  if (level >= google::protobuf::LOGLEVEL_ERROR) {
    spdlog::error("protobuf {}:{}: {}", filename, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", filename, line, message);
  }
}

}  // namespace

void InstallProtobufLogHandler() { google::protobuf::SetLogHandler(&OnProtobufLog); }

core::Status ParseMessage(const grpc::ByteBuffer& in, google::protobuf::Message* msg) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!in.Dump(&slices).ok()) return core::InvalidArgumentError("the request could not be read");
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::string errors;
  t_parse_errors = &errors;
  const bool ok = msg->ParseFromString(bytes);
  t_parse_errors = nullptr;
  if (ok) return core::OkStatus();
  std::string why = errors.empty() ? "malformed protobuf encoding" : errors;
  if (why.size() > 300) why = why.substr(0, 300) + "...";
  return core::InvalidArgumentError("the request is not a valid " + msg->GetDescriptor()->full_name() + ": " + why);
}

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& msg) {
  std::string bytes = msg.SerializeAsString();
  grpc::Slice slice(std::move(bytes));
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace softserve::server
