#include "hearth/server/server.hpp"

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "hearth/server/client_gateway.hpp"
#include "hearth/server/rest_server.hpp"
#include "hearth/session/child_process.hpp"
#include "hearth/session/kv_store.hpp"
#include "hearth/session/session_manager.hpp"
#include "hearth/session/session_store.hpp"

namespace hearth::server {
namespace fs = std::filesystem;
namespace {

template <typename T>
T must(Result<T> result) {
  if (!result) throw std::runtime_error(result.error().message);
  return std::move(result).value();
}

// The pyspark package inside the project's virtual environment: its bin/spark-submit is Spark's.
std::string default_spark_home() {
  fs::path lib = fs::path(HEARTH_DEFAULT_VENV) / "lib";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(lib, ec)) {
    fs::path candidate = entry.path() / "site-packages" / "pyspark";
    if (fs::exists(candidate / "bin" / "spark-submit")) return candidate.string();
  }
  return "";
}

std::string default_python() {
  fs::path python = fs::path(HEARTH_DEFAULT_VENV) / "bin" / "python";
  return fs::exists(python) ? python.string() : "python3";
}

// The embedded default: a redis-server child with append-only persistence in the data dir,
// reachable only through a unix socket there.
class EmbeddedRedis {
 public:
  explicit EmbeddedRedis(const fs::path& data_dir) {
    dir_ = fs::absolute(data_dir / "redis");
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
    socket_ = (dir_ / "redis.sock").string();
    fs::remove(socket_);
    session::ChildProcess::Options options;
    options.argv = {"redis-server", "--port", "0", "--unixsocket", socket_, "--unixsocketperm", "700",
                    "--dir", dir_.string(), "--appendonly", "yes", "--save", "", "--daemonize", "no"};
    process_ = must(session::ChildProcess::start(std::move(options)));
    session::RedisAddress address;
    address.unix_path = socket_;
    auto probe = session::make_redis_kv_store(address, 1);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!probe->ping()) {
      if (!process_->running() || std::chrono::steady_clock::now() > deadline) {
        std::string log;
        for (const auto& line : process_->log_lines()) log += "\n  " + line;
        throw std::runtime_error("the embedded redis-server did not start:" + log);
      }
      process_->wait_for_exit(std::chrono::milliseconds(50));  // a bounded poll step
    }
  }
  ~EmbeddedRedis() { process_->stop(std::chrono::seconds(10)); }
  std::string url() const { return "unix://" + socket_; }

 private:
  fs::path dir_;
  std::string socket_;
  std::unique_ptr<session::ChildProcess> process_;
};

}  // namespace

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A driver or client that goes away mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);
}

int run(const ServerConfig& config) {
  fs::path data_dir = fs::absolute(config.get("data-dir"));
  fs::create_directories(data_dir);

  std::unique_ptr<EmbeddedRedis> embedded;
  std::string redis_url = config.get("redis");
  if (redis_url.empty()) {
    embedded = std::make_unique<EmbeddedRedis>(data_dir);
    redis_url = embedded->url();
  }
  auto kv = session::make_redis_kv_store(must(session::parse_redis_url(redis_url)));
  if (auto ping = kv->ping(); !ping) throw std::runtime_error(ping.error().message);
  session::SessionStore store(*kv);
  // Before anything else reads or writes the store: records of a schema this server does not
  // speak must stay untouched, and the operator learns why at once.
  if (auto schema = store.check_schema("Redis " + redis_url); !schema) {
    throw std::runtime_error(schema.error().message);
  }

  session::SessionManagerSettings settings;
  settings.launch.spark_home = config.get("spark-home").empty() ? default_spark_home() : config.get("spark-home");
  if (settings.launch.spark_home.empty()) {
    throw std::runtime_error("no Spark found: set --spark-home or run scripts/setup.sh to create .venv");
  }
  settings.launch.master = config.get("master");
  settings.launch.agent_jar = config.get("agent-jar").empty() ? HEARTH_DEFAULT_AGENT_JAR : config.get("agent-jar");
  if (!fs::exists(settings.launch.agent_jar)) {
    throw std::runtime_error("driver agent jar not found: " + settings.launch.agent_jar);
  }
  settings.launch.python = config.get("python").empty() ? default_python() : config.get("python");
  settings.launch.idle_timeout = std::to_string(must(config.get_duration("driver-idle-timeout")).count()) + "ms";
  settings.data_dir = data_dir;
  settings.driver_bind_endpoint =
      "tcp://" + config.get("driver-host") + ":" + std::to_string(must(config.get_int("driver-port")));
  settings.heartbeat = must(config.get_duration("heartbeat-interval"));
  settings.stop_grace = must(config.get_duration("driver-stop-timeout"));
  settings.driver_lost_timeout = must(config.get_duration("driver-lost-timeout"));
  settings.stop_drivers_on_shutdown = must(config.get_bool("stop-drivers-on-shutdown"));
  settings.max_log_lines = static_cast<std::size_t>(must(config.get_int("log-lines")));
  settings.retained_statements = static_cast<std::size_t>(must(config.get_int("retained-statements")));
  settings.completion_timeout = must(config.get_duration("completion-timeout"));
  settings.session_timeout = must(config.get_duration("session-timeout"));
  settings.state_retain = must(config.get_duration("session-state-retain"));
  settings.gc_interval = must(config.get_duration("gc-interval"));
  settings.max_starting = static_cast<std::size_t>(must(config.get_int("max-starting-sessions")));
  settings.artifact_timeout = must(config.get_duration("artifact-timeout"));
  settings.default_share_level = config.get("default-share-level");
  settings.pool_size = static_cast<std::size_t>(must(config.get_int("driver-pool-size")));
  settings.driver_unused_timeout = must(config.get_duration("driver-unused-timeout"));
  for (std::string_view users = config.get("driver-pool-users"); !users.empty();) {
    auto comma = users.find(',');
    std::string user(users.substr(0, comma));
    user.erase(0, user.find_first_not_of(' '));
    user.erase(user.find_last_not_of(' ') + 1);
    if (!user.empty()) settings.pool_users.push_back(user);
    users = comma == std::string_view::npos ? std::string_view() : users.substr(comma + 1);
  }

  session::SessionManager manager(store, settings);

  RestOptions rest;
  rest.host = config.get("host");
  rest.port = static_cast<uint16_t>(must(config.get_int("port")));
  rest.threads = must(config.get_int("rest-threads"));
  rest.version = HEARTH_LIVY_API_VERSION "-hearth-" HEARTH_VERSION;
  rest.csrf_protection = must(config.get_bool("csrf-protection"));
  rest.max_request_bytes = static_cast<std::size_t>(must(config.get_int("max-request-mib"))) << 20;
  for (std::string_view rest_dirs = config.get("local-dir-whitelist"); !rest_dirs.empty();) {
    auto comma = rest_dirs.find(',');
    std::string dir(rest_dirs.substr(0, comma));
    if (!dir.empty()) rest.local_dir_whitelist.push_back(dir);
    rest_dirs = comma == std::string_view::npos ? std::string_view() : rest_dirs.substr(comma + 1);
  }
  RestServer server(manager, rest);
  ClientGatewayOptions client;
  client.host = config.get("client-host");
  client.port = static_cast<uint16_t>(must(config.get_int("client-port")));
  client.heartbeat = settings.heartbeat;
  client.max_upload_bytes = rest.max_request_bytes;
  client.call_threads = rest.threads;
  client.send_high_water_mark = must(config.get_int("client-send-hwm"));
  client.api = ApiOptions{rest.version, rest.local_dir_whitelist};
  ClientGateway gateway(manager, client);
  manager.start();
  if (auto started = server.start(); !started) throw std::runtime_error(started.error().message);
  if (auto started = gateway.start(); !started) throw std::runtime_error(started.error().message);

  std::cout << "hearth-server listening on http://" << rest.host << ":" << server.port()
            << " (clients: " << gateway.endpoint()
            << ", drivers: " << manager.driver_endpoint() << ", redis: " << redis_url
            << ", data: " << data_dir.string() << ")" << std::endl;

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int received = 0;
  sigwait(&set, &received);
  std::cout << "hearth-server: signal " << received << ", stopping" << std::endl;
  server.stop();
  gateway.stop_serving();
  manager.stop();
  gateway.stop();  // after the manager, so its last changes (sessions marked dead) are stored
  return 0;
}

}  // namespace hearth::server
