// hearth-fake-driver-for-benchmarks: a BENCHMARK TOOL. It runs NO SPARK and no user code.
//
// It speaks the driver channel (protocol/PROTOCOL.md, first part, version 3) as the Hearth agent
// does, so that bench/capacity.py can measure hearth-server itself with a thousand sessions on a
// small machine: hello (v 1) with the secret read from --secret-file (the file is then deleted),
// driver_state ready (with the sessions it holds) after each welcome, heartbeats every
// heartbeat_ms, hello again after three silent heartbeat intervals or an error not_authenticated,
// exit after --idle-timeout of silence. Every request is answered at once, in the order and shape
// the agent uses:
//   open_session      session_state idle
//   execute           session_state busy, statement_update running, statement_update available
//                     (output ok, text/plain = the statement's code, echoed), session_state idle;
//                     an execute for a statement id the session already ran (a re-send after a
//                     reconnect) is not run again: its final update is sent again (the output is
//                     the code, so it needs nothing kept; the times are new)
//   cancel_statement  ignored (every statement has already finished)
//   close_session     session_state dead (error unknown_session for an unknown session)
//   shutdown          session_state dead for each session, driver_state stopping, exit 0
//   complete          completion without candidates
//   add_artifact      artifact_added without error (nothing is fetched)
//   start_job         job_update failed ("the benchmark fake driver runs no jobs")
//
// It must never stand in for Spark in a test or a benchmark that claims Spark behaviour; the
// fault-injection stand-in for tests is tests/python/fake_driver_for_fault_injection.py.
//
// The server starts it through a fake Spark home whose bin/spark-submit execs this program with
// spark-submit's arguments; only the agent's (--server, --driver-id, --secret-file,
// --idle-timeout) are read. Exit codes as the agent's: 0 after shutdown, 2 rejected, 3 idle
// timeout, 64 bad arguments or an unreadable secret file.
//
// One thread, one DEALER socket, no per-session state but the last statement id: a few MB of RSS
// per process, so a benchmark can run many.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <zmq.hpp>

#include "hearth/protocol/codec.hpp"
#include "hearth/protocol/messages.hpp"
#include "hearth/session/duration.hpp"

namespace {

namespace protocol = hearth::protocol;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kExitShutdown = 0;
constexpr int kExitRejected = 2;
constexpr int kExitIdleTimeout = 3;
constexpr int kExitBadArguments = 64;
// Until the first welcome, as the agent (PROTOCOL.md "Start-up").
constexpr milliseconds kDefaultHeartbeat{2000};

struct Arguments {
  std::string server;
  std::string driver_id;
  std::string secret_file;
  milliseconds idle_timeout{10 * 60 * 1000};
};

// spark-submit's own arguments come first; only the agent's (after the jar) are read.
std::optional<Arguments> parse_arguments(int argc, char** argv) {
  Arguments args;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--server") {
      args.server = value;
    } else if (flag == "--driver-id") {
      args.driver_id = value;
    } else if (flag == "--secret-file") {
      args.secret_file = value;
    } else if (flag == "--idle-timeout") {
      auto d = hearth::session::parse_duration(value);
      if (!d) return std::nullopt;
      args.idle_timeout = *d;
    }
  }
  if (args.server.empty() || args.driver_id.empty() || args.secret_file.empty()) return std::nullopt;
  return args;
}

// The secret, read once and deleted at once (PROTOCOL.md "Security"); nullopt when unreadable.
std::optional<std::string> take_secret(const std::string& path) {
  std::ifstream in(path);
  std::string secret;
  if (!in || !std::getline(in, secret)) return std::nullopt;
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  while (!secret.empty() && (secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
  return secret;
}

std::string json_string(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return buffer.GetString();
}

int64_t epoch_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class FakeDriverForBenchmarks {
 public:
  FakeDriverForBenchmarks(Arguments args, std::string secret)
      : args_(std::move(args)), secret_(std::move(secret)), socket_(context_, zmq::socket_type::dealer) {
    // The last frames (driver_state stopping) still go out when the process ends.
    socket_.set(zmq::sockopt::linger, 2000);
    socket_.connect(args_.server);
  }

  // The poll loop; returns the process exit code.
  int run() {
    hello();
    auto last_received = Clock::now();
    auto last_heartbeat = Clock::now();
    for (;;) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::max(milliseconds(10), heartbeat_ / 2));
      auto now = Clock::now();
      zmq::message_t frame;
      while (socket_.recv(frame, zmq::recv_flags::dontwait)) {
        last_received = now;
        if (auto exit_code = handle(frame.to_string_view())) return *exit_code;
      }
      if (now - last_received >= args_.idle_timeout) {
        std::cerr << "fake driver (benchmark): nothing heard from the server for "
                  << args_.idle_timeout.count() << " ms, exiting\n";
        return kExitIdleTimeout;
      }
      if (now - last_received >= 3 * heartbeat_ && now - last_hello_ >= 3 * heartbeat_) {
        welcomed_ = false;
        hello();
      }
      if (welcomed_ && now - last_heartbeat >= heartbeat_) {
        send(protocol::Heartbeat{});
        last_heartbeat = now;
      }
    }
  }

 private:
  void send(const protocol::Message& message) {
    const std::string frame = protocol::encode(message);
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
  }

  void hello() {
    send(protocol::Hello{args_.driver_id, secret_, {protocol::kVersion}, static_cast<int64_t>(::getpid()),
                         "0.0.0-fake-driver-for-benchmarks"});
    last_hello_ = Clock::now();
  }

  // driver_state's sessions: the ids of the open sessions, in order.
  std::vector<int64_t> held_sessions() const {
    std::vector<int64_t> ids;
    for (const auto& [session_id, last] : last_statement_) ids.push_back(session_id);
    return ids;
  }

  void unknown_session(int64_t session_id) {
    send(protocol::ErrorReply{"unknown_session", "no session " + std::to_string(session_id) + " on this driver"});
  }

  void execute(const protocol::Execute& execute) {
    auto it = last_statement_.find(execute.session_id);
    if (it == last_statement_.end()) {
      unknown_session(execute.session_id);
      return;
    }
    // A re-send (statements run in order, so "already ran" is "not above the last one"): answered
    // with its final update, never run twice.
    const bool ran = it->second && execute.statement_id <= *it->second;
    if (!ran) it->second = execute.statement_id;
    const int64_t started = epoch_ms();
    if (!ran) {
      send(protocol::SessionStatus{execute.session_id, "busy", std::nullopt});
      send(protocol::StatementUpdate{execute.session_id, execute.statement_id, "running", 0.0, started, 0,
                                     std::nullopt});
    }
    std::string output = "{\"status\":\"ok\",\"execution_count\":" + std::to_string(execute.statement_id) +
                         ",\"data\":{\"text/plain\":" + json_string(execute.code) + "}}";
    send(protocol::StatementUpdate{execute.session_id, execute.statement_id, "available", 1.0, started,
                                   epoch_ms(), std::move(output)});
    if (!ran) send(protocol::SessionStatus{execute.session_id, "idle", std::nullopt});
  }

  // Handles one frame; an exit code when the process must end.
  std::optional<int> handle(std::string_view frame) {
    auto decoded = protocol::decode(frame);
    if (!decoded) {
      std::cerr << "fake driver (benchmark): dropped a frame: " << decoded.error().message << "\n";
      return std::nullopt;
    }
    protocol::Message& message = *decoded;
    if (auto* welcome = std::get_if<protocol::Welcome>(&message)) {
      heartbeat_ = std::max(milliseconds(10), milliseconds(welcome->heartbeat_ms));
      welcomed_ = true;
      send(protocol::DriverStatus{"ready", "fake-app-" + args_.driver_id, std::nullopt, std::nullopt,
                                  held_sessions()});
    } else if (auto* reject = std::get_if<protocol::Reject>(&message)) {
      std::cerr << "fake driver (benchmark): rejected: " << reject->reason << "\n";
      return kExitRejected;
    } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
      if (error->code == "not_authenticated") {
        welcomed_ = false;
        hello();
      }
    } else if (auto* open = std::get_if<protocol::OpenSession>(&message)) {
      last_statement_.try_emplace(open->session_id, std::nullopt);
      send(protocol::SessionStatus{open->session_id, "idle", std::nullopt});
    } else if (auto* run = std::get_if<protocol::Execute>(&message)) {
      execute(*run);
    } else if (auto* close = std::get_if<protocol::CloseSession>(&message)) {
      if (last_statement_.erase(close->session_id) == 0) {
        unknown_session(close->session_id);
      } else {
        send(protocol::SessionStatus{close->session_id, "dead", std::nullopt});
      }
    } else if (std::holds_alternative<protocol::Shutdown>(message)) {
      for (const auto& [session_id, last] : last_statement_) {
        send(protocol::SessionStatus{session_id, "dead", std::nullopt});
      }
      send(protocol::DriverStatus{"stopping", std::nullopt, std::nullopt, std::nullopt, {}});
      return kExitShutdown;
    } else if (auto* complete = std::get_if<protocol::Complete>(&message)) {
      send(protocol::Completion{complete->session_id, complete->request_id, {}});
    } else if (auto* artifact = std::get_if<protocol::AddArtifact>(&message)) {
      send(protocol::ArtifactAdded{artifact->session_id, artifact->request_id, std::nullopt});
    } else if (auto* job = std::get_if<protocol::StartJob>(&message)) {
      protocol::JobUpdate failed;
      failed.session_id = job->session_id;
      failed.job_id = job->job_id;
      failed.state = "failed";
      failed.completed = epoch_ms();
      failed.error = "the benchmark fake driver runs no jobs";
      send(failed);
    }
    // heartbeat, cancel_statement, cancel_job: nothing to answer.
    return std::nullopt;
  }

  Arguments args_;
  std::string secret_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  milliseconds heartbeat_ = kDefaultHeartbeat;
  bool welcomed_ = false;
  Clock::time_point last_hello_;
  // Open sessions and the last statement id each ran (statements run in order, so "already ran"
  // is "not above the last one").
  std::map<int64_t, std::optional<int64_t>> last_statement_;
};

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_arguments(argc, argv);
  if (!args) {
    std::cerr << "usage: hearth-fake-driver-for-benchmarks [spark-submit arguments…] --server ENDPOINT "
                 "--driver-id ID --secret-file PATH [--idle-timeout DURATION]\n"
                 "A benchmark tool: speaks Hearth's driver channel and runs no Spark.\n";
    return kExitBadArguments;
  }
  auto secret = take_secret(args->secret_file);
  if (!secret) {
    std::cerr << "fake driver (benchmark): cannot read the secret file " << args->secret_file << "\n";
    return kExitBadArguments;
  }
  try {
    FakeDriverForBenchmarks driver(std::move(*args), std::move(*secret));
    return driver.run();
  } catch (const zmq::error_t& e) {
    std::cerr << "fake driver (benchmark): " << e.what() << "\n";
    return 1;
  }
}
