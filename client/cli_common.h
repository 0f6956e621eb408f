// What the `softserve` CLI's command files share: global flags, the subcommand record, and
// printing of statuses and messages.
#ifndef SOFTSERVE_CLIENT_CLI_COMMON_H_
#define SOFTSERVE_CLIENT_CLI_COMMON_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "client/softserve_client.h"

namespace softserve::client {

struct Globals {
  ClientOptions options;
  bool json = false;
  double timeout_s = 60;
};

// A subcommand: the CLI11 node that holds its flags, and what it does once parsed. Commands
// that talk to a server get the connected client; keygen does not need one.
struct Command {
  CLI::App* app = nullptr;
  std::function<int(Client&)> run;
  std::function<int()> run_offline;
};

// Prints "softserve: CODE: message" to standard error; returns 1 (the exit status).
int PrintStatus(const grpc::Status& s);
// The message as indented JSON on standard output (every field, defaults included).
void PrintJson(const google::protobuf::Message& m);
// "name" or "name@version".
v1::PromptRef ParsePromptRef(const std::string& s);

// `softserve train ...` (cli_train.cc).
void AddTrainingCommands(CLI::App* app, const Globals& g, std::vector<Command>* commands);

}  // namespace softserve::client

#endif  // SOFTSERVE_CLIENT_CLI_COMMON_H_
