// corridor-bridge — plugs any agency system that reads and writes JSON into
// Corridor.
//
//   corridor-bridge --as zs-police submit < envelopes.jsonl     # one Envelope per line
//   corridor-bridge --as zs-customs receive --subscription ops --topic 'smuggling.*'
//   corridor-bridge --as zs-customs receive --subscription ops --out-dir /var/spool/corridor
//
// submit: reads protobuf-JSON envelopes (one per line), submits them pipelined,
// and writes one JSON result line per input line to stdout, in order. Exit 1 if
// any was refused. Resubmitting a file is safe: client_message_id dedupes.
//
// receive: writes each delivery as one JSON line to stdout, or as <seq>.json in
// --out-dir (written to a temp file, fsynced and renamed before the ack), and
// acks it once written. Runs until SIGINT/SIGTERM or --count.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agency_adapters/bridge/bridge_input.h"
#include "agency_adapters/cli/common.h"
#include "agency_adapters/client/agency_client.h"
#include "common/long_running.h"

namespace {

namespace v1 = corridor::v1;
std::atomic<bool> g_stop{false};

std::string ErrorLine(size_t line, const std::string& id, const absl::Status& s) {
  v1::SubmitStreamResponse r;
  r.set_code(static_cast<int>(s.code()));
  r.set_error_message(std::string(s.message()));
  r.set_client_message_id(id);
  std::string json = corridor::cli::ToJson(r);
  // The numeric gRPC code for programs, its name for people reading the output.
  return absl::StrCat("{\"line\":", line, ",\"status\":\"", absl::StatusCodeToString(s.code()),
                      "\",", json.substr(1));
}

int RunSubmit(corridor::AgencyClient& client, const std::string& in_path, size_t window) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (!in_path.empty() && in_path != "-") {
    file.open(in_path);
    if (!file) {
      std::cerr << "corridor-bridge: cannot read " << in_path << "\n";
      return 2;
    }
    in = &file;
  }
  int rc = 0;
  std::string text;
  size_t line_no = 0;
  // Lines waiting for their answer, in input order: an envelope to submit, or a
  // line that did not parse (answered in its place, not ahead of the others).
  struct Pending {
    size_t line;
    absl::Status parse_error;  // OK: envelope holds the line
  };
  std::vector<Pending> pending;
  std::vector<v1::Envelope> batch;
  auto flush = [&] {
    auto results = client.SubmitAll(batch, window);
    size_t next = 0;
    for (const Pending& p : pending) {
      if (!p.parse_error.ok()) {
        std::cout << ErrorLine(p.line, "", p.parse_error) << "\n";
        rc = 1;
        continue;
      }
      const size_t i = next++;
      if (results[i].ok()) {
        std::string json = corridor::cli::ToJson(*results[i]);
        std::cout << "{\"line\":" << p.line << "," << json.substr(1) << "\n";
      } else {
        std::cout << ErrorLine(p.line, batch[i].client_message_id(), results[i].status()) << "\n";
        rc = 1;
      }
    }
    std::cout.flush();
    batch.clear();
    pending.clear();
  };
  while (std::getline(*in, text)) {
    ++line_no;
    auto env = corridor::bridge::ParseEnvelopeLine(text);
    if (!env.ok()) {
      pending.push_back({line_no, env.status()});
      continue;
    }
    if (!env->has_value()) continue;  // a blank line
    batch.push_back(std::move(**env));
    pending.push_back({line_no, absl::OkStatus()});
    if (batch.size() >= 4 * window) flush();
  }
  if (!pending.empty()) flush();
  return rc;
}

absl::Status WriteDurably(const std::filesystem::path& dir, const v1::Delivery& d) {
  std::filesystem::path final_path = dir / absl::StrCat(d.seq(), ".json");
  std::filesystem::path tmp = dir / absl::StrCat(".", d.seq(), ".json.tmp");
  std::string body = corridor::cli::ToJson(d, /*pretty=*/true) + "\n";
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0640);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
  std::error_code ec;
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot rename to ", final_path.string()));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

int RunReceive(corridor::AgencyClient& client, const corridor::SubscriptionOptions& opts,
               const std::string& out_dir, uint64_t count) {
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
      std::cerr << "corridor-bridge: --out-dir " << out_dir << ": " << ec.message() << "\n";
      return 2;
    }
  }
  std::atomic<uint64_t> written{0};
  auto sub = client.Subscribe(
      opts,
      [&](const v1::Delivery& d) {
        // Past --count: not written and not acked, so it stays queued.
        if (count > 0 && written.load() >= count) return false;
        if (!out_dir.empty()) {
          if (auto s = WriteDurably(out_dir, d); !s.ok()) {
            std::cerr << "corridor-bridge: " << s.message() << " (not acked)\n";
            return false;
          }
        } else {
          std::cout << corridor::cli::ToJson(d) << std::endl;
        }
        written.fetch_add(1);
        return true;
      },
      [](const absl::Status& s) {
        std::cerr << "corridor-bridge: stream ended (" << corridor::cli::FormatError(s)
                  << "); reconnecting\n";
      });
  auto opened = sub->WaitOpened(absl::Seconds(30));
  if (!opened.ok()) {
    std::cerr << "corridor-bridge: " << corridor::cli::FormatError(opened.status()) << "\n";
    return 1;
  }
  while (!g_stop.load() && (count == 0 || written.load() < count)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (sub->last_error().code() == absl::StatusCode::kPermissionDenied ||
        sub->last_error().code() == absl::StatusCode::kInvalidArgument) {
      std::cerr << "corridor-bridge: " << corridor::cli::FormatError(sub->last_error()) << "\n";
      return 1;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the last ack leave
  sub->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  corridor::UseReleaseMutexes();
  CLI::App app{"corridor-bridge — JSON lines in and out of Corridor"};
  app.require_subcommand(1);
  corridor::cli::ConnectionFlags conn;
  corridor::cli::AddConnectionFlags(app, &conn);

  auto* submit = app.add_subcommand("submit", "submit Envelope JSON lines");
  std::string in_path;
  size_t window = 256;
  submit->add_option("--in", in_path, "input file (default stdin)");
  submit->add_option("--window", window, "submissions in flight")->capture_default_str();

  auto* receive = app.add_subcommand("receive", "write deliveries as JSON");
  corridor::SubscriptionOptions opts;
  std::string name, out_dir;
  std::vector<std::string> topics;
  uint64_t count = 0;
  receive->add_option("--subscription", name, "durable subscription name")->required();
  receive->add_option("--topic", topics, "topic filter (repeatable)");
  receive->add_option("--out-dir", out_dir, "one <seq>.json file per delivery instead of stdout");
  receive->add_option("--count", count, "exit after this many deliveries");
  CLI11_PARSE(app, argc, argv);

  signal(SIGINT, [](int) { g_stop.store(true); });
  signal(SIGTERM, [](int) { g_stop.store(true); });

  auto options = corridor::cli::ToClientOptions(conn);
  if (!options.ok()) {
    std::cerr << "corridor-bridge: " << corridor::cli::FormatError(options.status()) << "\n";
    return 2;
  }
  auto client = corridor::AgencyClient::Connect(*options);
  if (!client.ok()) {
    std::cerr << "corridor-bridge: " << corridor::cli::FormatError(client.status()) << "\n";
    return 1;
  }
  if (submit->parsed()) return RunSubmit(**client, in_path, window);
  opts.open.set_name(name);
  for (const auto& t : topics) opts.open.add_topic_filters(t);
  return RunReceive(**client, opts, out_dir, count);
}
