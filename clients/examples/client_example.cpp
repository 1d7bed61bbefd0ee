// hearth-client-example: the C++ client library in a few lines. Connects to hearth-server's
// client channel, creates a session, waits until it is idle, runs one statement (printing its
// progress as the server pushes it, then its text output) and deletes the session.
//
//   hearth-client-example [--server HOST:PORT] [--kind pyspark|spark|sql|sparkr] CODE
//
// The server comes from --server, else the environment variable HEARTH_SERVER, else
// 127.0.0.1:8999. Exit code 0 when the statement ran and its output is "ok".

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "hearth/clients/client.hpp"

namespace {

void usage(std::ostream& out) {
  out << "usage: hearth-client-example [--server HOST:PORT] [--kind KIND] CODE\n"
         "  --server HOST:PORT  hearth-server's client channel (default: $HEARTH_SERVER, else "
         "127.0.0.1:8999)\n"
         "  --kind KIND         the session's kind: pyspark (default), spark, sql, sparkr\n"
         "  CODE                the statement to run, e.g. 'spark.range(100).count()'\n";
}

int fail(const std::string& what, const hearth::Error& error) {
  std::cerr << what << ": " << error.code << ": " << error.message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  hearth::clients::ClientOptions options;
  if (const char* env = std::getenv("HEARTH_SERVER"); env != nullptr && *env != '\0') {
    options.server = env;
  }
  std::string kind = "pyspark";
  std::optional<std::string> code;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      return 0;
    } else if (arg == "--server" && i + 1 < argc) {
      options.server = argv[++i];
    } else if (arg == "--kind" && i + 1 < argc) {
      kind = argv[++i];
    } else if (!arg.starts_with("--") && !code) {
      code = arg;
    } else {
      usage(std::cerr);
      return 2;
    }
  }
  if (!code) {
    usage(std::cerr);
    return 2;
  }

  try {
    hearth::clients::Client client(options);

    hearth::clients::SubmitParam param;
    param.kind = kind;
    auto session = client.create_session(param);
    if (!session) return fail("create session", session.error());
    std::cout << "session " << session->id << " created (" << session->state << ")\n";

    int status = 1;
    auto idle = client.wait_for_idle(session->id, std::chrono::minutes(5));
    if (!idle) {
      fail("wait for idle", idle.error());
    } else {
      // Progress arrives as the server pushes it, on the client's callback thread.
      auto future = client.run_async(session->id, *code, std::nullopt,
                                     [](const hearth::clients::Statement& update) {
                                       std::cout << "statement " << update.id << ": "
                                                 << update.state << " "
                                                 << static_cast<int>(update.progress * 100)
                                                 << "%\n";
                                     });
      auto statement = future.get();
      if (!statement) {
        fail("run", statement.error());
      } else if (statement->output && statement->output->status == "ok") {
        std::cout << statement->output->text.value_or(statement->output->data_json) << "\n";
        status = 0;
      } else if (statement->output) {
        std::cerr << statement->output->ename << ": " << statement->output->evalue << "\n";
      } else {
        std::cerr << "statement ended " << statement->state << " without output\n";
      }
    }

    if (auto deleted = client.delete_session(session->id); !deleted) {
      fail("delete session", deleted.error());
      status = 1;
    }
    return status;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
