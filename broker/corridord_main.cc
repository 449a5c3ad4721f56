// corridord: the Corridor broker.
//
//   corridord                         # the embedded default (the local demo)
//   corridord --config /etc/corridor/corridord.yaml
//
// SIGINT/SIGTERM stop it gracefully; SIGHUP reloads need-to-share policy and
// the TLS trust (CA bundle and CRLs).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/config.h"
#include "broker/grpc/server.h"
#include "broker/policy_loader.h"
#include "common/long_running.h"

namespace {

void Log(const std::string& line) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())
            << " corridord: " << line << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  corridor::UseReleaseMutexes();
  CLI::App app{"corridord — the Corridor intelligence-sharing broker"};
  std::string config_path;
  std::string listen;
  std::string data_dir;
  std::string port_file;
  bool print_config = false;
  app.add_option("-c,--config", config_path, "YAML config (default: the embedded demo config)");
  app.add_option("--listen", listen, "override broker.listen (host:port, port 0 = any free)");
  app.add_option("--data-dir", data_dir, "override broker.data_dir");
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  app.add_flag("--print-default-config", print_config, "print the embedded config and exit");
  CLI11_PARSE(app, argc, argv);

  if (print_config) {
    std::cout << corridor::broker::EmbeddedDefaultConfigText();
    return 0;
  }
  absl::StatusOr<corridor::broker::BrokerConfig> config =
      config_path.empty() ? corridor::broker::EmbeddedDefaultConfig()
                          : corridor::broker::LoadConfigFile(config_path);
  if (!config.ok()) {
    Log(absl::StrCat("bad config: ", config.status().message()));
    return 2;
  }
  if (!listen.empty()) config->listen = listen;
  if (!data_dir.empty()) config->data_dir = data_dir;
  if (config_path.empty()) {
    if (auto s = corridor::broker::EnsureDemoCertificates(*config); !s.ok()) {
      Log(absl::StrCat("cannot prepare demo certificates: ", s.message()));
      return 1;
    }
  }

  // Signals are taken by one thread with sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto decision_point = corridor::broker::LoadDecisionPoint(*config);
  if (!decision_point.ok()) {
    Log(absl::StrCat("policy refused: ", decision_point.status().message()));
    return 2;
  }
  auto server = corridor::broker::grpc_transport::BrokerServer::Start(*config, *decision_point);
  if (!server.ok()) {
    Log(absl::StrCat("cannot start: ", server.status().message()));
    return 1;
  }
  Log(absl::StrCat("broker '", config->broker_id, "' of trust domain '",
                   config->registry->trust_domain, "' listening on ", config->listen, " (port ",
                   (*server)->port(), "), data in ", config->data_dir, ", config ", config->source,
                   ", policy ", (*decision_point)->version()));
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::filesystem::rename(tmp, port_file);
  }

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      auto s = corridor::broker::ReloadPolicy(*config, (*server)->core(), "SIGHUP");
      Log(s.ok() ? absl::StrCat("policy reloaded: ", (*server)->core()->decision_point()->version())
                 : absl::StrCat("policy reload refused, keeping ",
                                (*server)->core()->decision_point()->version(), ": ", s.message()));
      (*server)->ReloadTrust("SIGHUP");
      continue;
    }
    Log(absl::StrCat("signal ", sig, ": shutting down"));
    break;
  }
  (*server)->Shutdown();
  Log("stopped");
  return 0;
}
