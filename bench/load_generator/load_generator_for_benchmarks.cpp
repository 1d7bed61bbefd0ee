// hearth-load-generator-for-benchmarks: a BENCHMARK TOOL. Closed-loop load on hearth-server for
// bench/capacity.py: N workers, each doing one operation after another as fast as the server
// answers, for a warm-up and then a measured window. Prints "started" on stderr when its clock
// starts (after connecting and subscribing), and at the end one JSON object on stdout: the
// operations finished inside the window, their throughput and latency percentiles, errors, and
// this process's own CPU over the window (so a reader can tell whether the generator, not the
// server, was the limit).
//
//   hearth-load-generator-for-benchmarks --op OP [--rest HOST:PORT | --client-channel HOST:PORT]
//       [--concurrency N] [--warmup DURATION] [--duration DURATION] [--sessions ID,ID,...]
//       [--code CODE] [--clients N]
//
// Operations (worker i works on session ids[i % ids.size()]):
//   version      GET /version (the do-nothing baseline of the transport)
//   get-session  GET /sessions/{id}
//   statement    REST: POST /sessions/{id}/statements {"code": CODE}, then
//                GET /sessions/{id}/statements/{sid}?wait=10000 (Hearth's long-poll) until it is
//                available; client channel: Client::run (call, then the pushed final event; each
//                session's subscription is held for the whole run). The output must be ok.
// REST uses one keep-alive HTTP/1.1 connection per worker (blocking sockets, TCP_NODELAY); the
// client channel uses --clients hearth::clients::Client objects (default 1) shared round-robin.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "hearth/clients/client.hpp"
#include "hearth/session/duration.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Options {
  std::string op;
  std::string rest;            // HOST:PORT
  std::string client_channel;  // HOST:PORT
  int concurrency = 1;
  milliseconds warmup{1000};
  milliseconds duration{5000};
  std::vector<int64_t> sessions;
  std::string code = "1 + 1";
  int clients = 1;
};

[[noreturn]] void usage_error(const std::string& why) {
  std::cerr << "hearth-load-generator-for-benchmarks: " << why
            << "\nusage: hearth-load-generator-for-benchmarks --op version|get-session|statement "
               "(--rest HOST:PORT | --client-channel HOST:PORT) [--concurrency N] [--warmup 1s] "
               "[--duration 5s] [--sessions 1,2,3] [--code CODE] [--clients N]\n";
  std::exit(2);
}

int parse_int(const std::string& text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) usage_error("bad number '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::string warmup = "1s";
  std::string duration = "5s";
  CLI::App app{"hearth-load-generator-for-benchmarks: closed-loop load for bench/capacity.py"};
  app.add_option("--op", o.op, "version | get-session | statement")
      ->required()
      ->check(CLI::IsMember({"version", "get-session", "statement"}));
  auto* rest = app.add_option("--rest", o.rest, "HOST:PORT of the REST API");
  auto* channel = app.add_option("--client-channel", o.client_channel, "HOST:PORT of the client channel");
  rest->excludes(channel);
  app.add_option("--concurrency", o.concurrency, "workers")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "e.g. 1s");
  app.add_option("--duration", duration, "e.g. 5s");
  app.add_option("--sessions", o.sessions, "session ids, comma-separated")->delimiter(',');
  app.add_option("--code", o.code, "statement code");
  app.add_option("--clients", o.clients, "client-channel Client objects")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  auto duration_of = [](const std::string& text) {
    auto parsed = hearth::session::parse_duration(text);
    if (!parsed) usage_error(parsed.error().message);
    return *parsed;
  };
  o.warmup = duration_of(warmup);
  o.duration = duration_of(duration);
  if (o.rest.empty() == o.client_channel.empty()) usage_error("give one of --rest, --client-channel");
  if (o.op != "version" && o.sessions.empty()) usage_error("--op " + o.op + " needs --sessions");
  return o;
}

std::string json_string(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return buffer.GetString();
}

// One keep-alive HTTP/1.1 connection, blocking. Throws std::runtime_error on transport errors
// (the caller counts it and reconnects).
class HttpConnection {
 public:
  HttpConnection(std::string host, int port) : host_(std::move(host)), port_(port) {}
  ~HttpConnection() { close(); }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  struct Response {
    int status = 0;
    std::string body;
  };

  Response request(std::string_view method, std::string_view path, std::string_view body = {}) {
    if (fd_ < 0) open();
    std::string out;
    out.reserve(160 + body.size());
    out.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(host_);
    if (!body.empty()) {
      out.append("\r\nContent-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size()));
    }
    out.append("\r\n\r\n").append(body);
    for (std::size_t sent = 0; sent < out.size();) {
      ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) fail("send");
      sent += static_cast<std::size_t>(n);
    }
    return read_response();
  }

 private:
  void open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) fail("socket");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    if (::inet_pton(AF_INET, host_.c_str(), &address.sin_addr) != 1) fail("address " + host_);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("connect");
    buffer_.clear();
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  [[noreturn]] void fail(const std::string& what) {
    std::string message = what + ": " + std::strerror(errno);
    close();
    throw std::runtime_error(message);
  }

  void read_more() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0) fail("recv");
    if (n == 0) {
      close();
      throw std::runtime_error("the server closed the connection");
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }

  static std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  Response read_response() {
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) read_more();
    const std::string head = lower(std::string_view(buffer_).substr(0, head_end + 2));
    Response response;
    if (head.size() < 12 || head.compare(0, 5, "http/") != 0) {
      close();
      throw std::runtime_error("not an HTTP response");
    }
    response.status = std::stoi(head.substr(9, 3));
    std::size_t length = 0;
    bool chunked = head.find("transfer-encoding: chunked") != std::string::npos;
    bool closes = head.find("connection: close") != std::string::npos;
    if (auto at = head.find("content-length:"); at != std::string::npos) {
      length = std::stoul(head.substr(at + 15));
    }
    buffer_.erase(0, head_end + 4);
    if (chunked) {
      for (;;) {
        std::size_t line_end;
        while ((line_end = buffer_.find("\r\n")) == std::string::npos) read_more();
        std::size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
        while (buffer_.size() < line_end + 2 + size + 2) read_more();
        response.body.append(buffer_, line_end + 2, size);
        buffer_.erase(0, line_end + 2 + size + 2);
        if (size == 0) break;
      }
    } else {
      while (buffer_.size() < length) read_more();
      response.body = buffer_.substr(0, length);
      buffer_.erase(0, length);
    }
    if (closes) close();
    return response;
  }

  std::string host_;
  int port_;
  int fd_ = -1;
  std::string buffer_;
};

std::pair<std::string, int> host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) usage_error("expected HOST:PORT, got " + text);
  return {text.substr(0, colon), parse_int(text.substr(colon + 1))};
}

// One operation; throws std::runtime_error when it failed (counted as an error).
using Operation = std::function<void()>;

// The text/plain output of a finished statement's JSON, or an error.
void check_statement_output(const std::string& json, const std::string& code) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) throw std::runtime_error("statement: bad JSON");
  auto state = doc.FindMember("state");
  if (state == doc.MemberEnd() || !state->value.IsString() || std::string_view(state->value.GetString()) != "available") {
    throw std::runtime_error("statement not available: " + json.substr(0, 300));
  }
  const auto& output = doc["output"];
  if (!output.IsObject() || !output.HasMember("data") || !output["data"].HasMember("text/plain") ||
      code != output["data"]["text/plain"].GetString()) {
    throw std::runtime_error("statement output is not the fake driver's echo: " + json.substr(0, 300));
  }
}

Operation rest_operation(const Options& o, int worker) {
  auto [host, port] = host_port(o.rest);
  auto connection = std::make_shared<HttpConnection>(host, port);
  const int64_t session = o.sessions.empty() ? 0 : o.sessions[static_cast<std::size_t>(worker) % o.sessions.size()];
  if (o.op == "version") {
    return [connection] {
      auto r = connection->request("GET", "/version");
      if (r.status != 200) throw std::runtime_error("GET /version: " + std::to_string(r.status));
    };
  }
  const std::string session_path = "/sessions/" + std::to_string(session);
  if (o.op == "get-session") {
    return [connection, session_path] {
      auto r = connection->request("GET", session_path);
      if (r.status != 200) throw std::runtime_error("GET " + session_path + ": " + std::to_string(r.status) + " " + r.body);
    };
  }
  const std::string body = "{\"code\":" + json_string(o.code) + "}";
  return [connection, session_path, body, code = o.code] {
    auto posted = connection->request("POST", session_path + "/statements", body);
    if (posted.status != 201) {
      throw std::runtime_error("POST statement: " + std::to_string(posted.status) + " " + posted.body);
    }
    rapidjson::Document doc;
    doc.Parse(posted.body.data(), posted.body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("id") || !doc["id"].IsInt64()) {
      throw std::runtime_error("POST statement: no id in " + posted.body);
    }
    const std::string path = session_path + "/statements/" + std::to_string(doc["id"].GetInt64());
    std::string done = posted.body;
    std::string_view state = doc["state"].IsString() ? doc["state"].GetString() : "";
    if (state != "available") {
      auto r = connection->request("GET", path + "?wait=10000");
      if (r.status != 200) throw std::runtime_error("GET " + path + ": " + std::to_string(r.status));
      done = std::move(r.body);
    }
    check_statement_output(done, code);
  };
}

struct ClientChannel {
  std::vector<std::unique_ptr<hearth::clients::Client>> clients;
  std::vector<hearth::clients::Subscription> subscriptions;
};

Operation client_channel_operation(const Options& o, int worker, ClientChannel& channel) {
  hearth::clients::Client& client = *channel.clients[static_cast<std::size_t>(worker) % channel.clients.size()];
  const int64_t session = o.sessions.empty() ? 0 : o.sessions[static_cast<std::size_t>(worker) % o.sessions.size()];
  if (o.op == "version" || o.op == "get-session") {
    const std::string path = o.op == "version" ? "/version" : "/sessions/" + std::to_string(session);
    return [&client, path] {
      auto r = client.call("GET", path);
      if (!r) throw std::runtime_error("GET " + path + ": " + r.error().code + " " + r.error().message);
      if (r->status != 200) throw std::runtime_error("GET " + path + ": " + std::to_string(r->status));
    };
  }
  return [&client, session, code = o.code] {
    auto r = client.run(session, code, std::nullopt, std::chrono::seconds(10));
    if (!r) throw std::runtime_error("run: " + r.error().code + " " + r.error().message);
    if (!r->succeeded() || !r->output || r->output->text != code) {
      throw std::runtime_error("statement " + std::to_string(r->id) + " is " + r->state +
                               ", not the fake driver's echo");
    }
  };
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double percentile_ms(const std::vector<double>& sorted_s, double p) {
  if (sorted_s.empty()) return 0;
  double rank = (static_cast<double>(sorted_s.size()) - 1) * p / 100.0;
  auto low = static_cast<std::size_t>(rank);
  auto high = std::min(low + 1, sorted_s.size() - 1);
  return (sorted_s[low] + (sorted_s[high] - sorted_s[low]) * (rank - static_cast<double>(low))) * 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);

  ClientChannel channel;
  if (!o.client_channel.empty()) {
    for (int i = 0; i < o.clients; ++i) {
      hearth::clients::ClientOptions options;
      options.server = o.client_channel;
      options.client_name = "hearth-load-generator-for-benchmarks/0.1.0";
      options.request_timeout = std::chrono::seconds(30);
      channel.clients.push_back(std::make_unique<hearth::clients::Client>(options));
    }
    // Held for the whole run, so Client::run does not subscribe and unsubscribe per statement.
    if (o.op == "statement") {
      std::set<std::pair<std::size_t, int64_t>> wanted;  // (client, session) of each worker
      for (int w = 0; w < o.concurrency; ++w) {
        wanted.emplace(static_cast<std::size_t>(w) % channel.clients.size(),
                       o.sessions[static_cast<std::size_t>(w) % o.sessions.size()]);
      }
      for (const auto& [c, session] : wanted) {
        auto sub = channel.clients[c]->subscribe(session, [](const hearth::clients::Event&) {});
        if (!sub) {
          std::cerr << "subscribe: " << sub.error().code << " " << sub.error().message << "\n";
          return 1;
        }
        channel.subscriptions.push_back(std::move(*sub));
      }
    }
  }

  // Told on stderr, so a caller can align its own measurements with the window.
  std::cerr << "started\n" << std::flush;
  const auto started = Clock::now();
  const auto window_start = started + o.warmup;
  const auto window_end = window_start + o.duration;
  std::mutex results_mutex;
  std::vector<double> latencies;
  int64_t errors = 0;
  std::string first_error;
  std::vector<std::thread> workers;
  for (int w = 0; w < o.concurrency; ++w) {
    Operation op = o.rest.empty() ? client_channel_operation(o, w, channel) : rest_operation(o, w);
    workers.emplace_back([&, op = std::move(op)] {
      std::vector<double> mine;
      int64_t my_errors = 0;
      std::string my_first_error;
      for (;;) {
        const auto begin = Clock::now();
        if (begin >= window_end) break;
        try {
          op();
        } catch (const std::exception& e) {
          if (begin >= window_start) {
            ++my_errors;
            if (my_first_error.empty()) my_first_error = e.what();
          }
          continue;
        }
        const auto end = Clock::now();
        if (begin >= window_start && end <= window_end) {
          mine.push_back(std::chrono::duration<double>(end - begin).count());
        }
      }
      std::lock_guard lock(results_mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      errors += my_errors;
      if (first_error.empty()) first_error = my_first_error;
    });
  }
  std::this_thread::sleep_until(window_start);
  const double cpu_start = cpu_seconds();
  std::this_thread::sleep_until(window_end);
  const double cpu_end = cpu_seconds();
  for (auto& t : workers) t.join();

  std::sort(latencies.begin(), latencies.end());
  const double seconds = std::chrono::duration<double>(o.duration).count();
  std::ostringstream out;
  out << "{\"op\":" << json_string(o.op) << ",\"channel\":\"" << (o.rest.empty() ? "client-channel" : "rest")
      << "\",\"concurrency\":" << o.concurrency << ",\"seconds\":" << seconds
      << ",\"ops\":" << latencies.size() << ",\"per_s\":" << static_cast<double>(latencies.size()) / seconds
      << ",\"errors\":" << errors << ",\"p50_ms\":" << percentile_ms(latencies, 50)
      << ",\"p90_ms\":" << percentile_ms(latencies, 90) << ",\"p99_ms\":" << percentile_ms(latencies, 99)
      << ",\"max_ms\":" << (latencies.empty() ? 0.0 : latencies.back() * 1000.0)
      << ",\"cpu_pct\":" << (cpu_end - cpu_start) / seconds * 100.0
      << ",\"first_error\":" << json_string(first_error.substr(0, 500)) << "}\n";
  std::cout << out.str() << std::flush;
  return 0;
}
