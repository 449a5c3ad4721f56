// corridor-certs: the exchange PKI on the command line (see certs/README.md).
//
//   corridor-certs init   --ca-dir D --trust-domain TD [--days N]
//   corridor-certs issue  --ca-dir D --kind agency|auditor|admin|broker --name NAME
//                         [--node NODE] --out DIR [--file-name STEM] [--dns H]... [--ip A]...
//                         [--days N]
//   corridor-certs revoke --ca-dir D (--serial HEX | --cert FILE) [--crl-dir DIR]
//   corridor-certs crl    --ca-dir D --crl-dir DIR [--days N]
//   corridor-certs dev    --out DIR [--trust-domain TD]
//   corridor-certs show   FILE [--json]
//   corridor-certs bundle --ca-dir D --out FILE   # the CA certificate, for peer exchanges
//
// Exit status: 0 on success, 1 when the operation fails, 2 on a usage error.
// Errors go to stderr as "corridor-certs: <message>". Key material is never printed.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "certs/pki.h"

namespace corridor::certs {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr char kDefaultNode[] = "node1";

int Fail(const absl::Status& status) {
  std::cerr << "corridor-certs: " << status.ToString() << "\n";
  return kExitFailure;
}

int Usage(const std::string& message) {
  std::cerr << "corridor-certs: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += JsonString(items[i]);
  }
  return out + "]";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out.empty() ? "-" : out;
}

void PrintSummary(const CertSummary& s, bool json) {
  if (json) {
    std::cout << "{\"subject\": " << JsonString(s.subject)
              << ", \"issuer\": " << JsonString(s.issuer)
              << ", \"serial_hex\": " << JsonString(s.serial_hex)
              << ", \"not_before\": " << JsonString(s.not_before)
              << ", \"not_after\": " << JsonString(s.not_after)
              << ", \"uri_san\": " << JsonString(s.uri_san)
              << ", \"dns_names\": " << JsonArray(s.dns_names)
              << ", \"ip_addresses\": " << JsonArray(s.ip_addresses) << "}\n";
    return;
  }
  std::cout << "subject:      " << s.subject << "\n"
            << "issuer:       " << s.issuer << "\n"
            << "serial:       " << s.serial_hex << "\n"
            << "not before:   " << s.not_before << "\n"
            << "not after:    " << s.not_after << "\n"
            << "uri san:      " << (s.uri_san.empty() ? "-" : s.uri_san) << "\n"
            << "dns names:    " << Joined(s.dns_names) << "\n"
            << "ip addresses: " << Joined(s.ip_addresses) << "\n";
}

int Run(int argc, char** argv) {
  CLI::App app{"corridor-certs: the Corridor exchange PKI (CA, SPIFFE leaf certs, CRLs)",
               "corridor-certs"};
  app.require_subcommand(1);

  std::string ca_dir, trust_domain, kind, name, node, out_dir, file_name, serial, cert_file,
      crl_dir, show_file;
  std::vector<std::string> dns_names, ips;
  int init_days = 3650, issue_days = 397, crl_days = 30;
  bool json = false;

  CLI::App* init = app.add_subcommand("init", "create a CA for a trust domain");
  init->add_option("--ca-dir", ca_dir, "CA directory (created mode 0700)")->required();
  init->add_option("--trust-domain", trust_domain, "trust domain, e.g. zhongshan.corridor")
      ->required();
  init->add_option("--days", init_days, "validity in days (default 3650)");

  CLI::App* issue = app.add_subcommand("issue", "issue a leaf certificate and key");
  issue->add_option("--ca-dir", ca_dir, "CA directory")->required();
  issue->add_option("--kind", kind, "agency, auditor, admin or broker")
      ->required()
      ->check(CLI::IsMember({"agency", "auditor", "admin", "broker"}));
  issue->add_option("--name", name, "agency id, or the auditor/admin/broker name")->required();
  CLI::Option* node_opt =
      issue->add_option("--node", node, "node of the agency (agency only; default node1)");
  issue->add_option("--out", out_dir, "output directory")->required();
  issue->add_option("--file-name", file_name,
                    "file stem (default NAME, or NAME-NODE for an agency node other than node1)");
  issue->add_option("--dns", dns_names, "extra DNS SAN (repeatable)");
  issue->add_option("--ip", ips, "extra IP SAN (repeatable)");
  issue->add_option("--days", issue_days, "validity in days (default 397)");

  CLI::App* revoke = app.add_subcommand("revoke", "revoke a certificate this CA issued");
  revoke->add_option("--ca-dir", ca_dir, "CA directory")->required();
  CLI::Option* serial_opt = revoke->add_option("--serial", serial, "serial in hex");
  CLI::Option* cert_opt = revoke->add_option("--cert", cert_file, "certificate file");
  serial_opt->excludes(cert_opt);
  cert_opt->excludes(serial_opt);
  revoke->add_option("--crl-dir", crl_dir, "if given, rewrite the CRL there");

  CLI::App* crl = app.add_subcommand("crl", "write the CA's CRL in hashed form");
  crl->add_option("--ca-dir", ca_dir, "CA directory")->required();
  crl->add_option("--crl-dir", crl_dir, "CRL directory (gRPC set_crl_directory)")->required();
  crl->add_option("--days", crl_days, "nextUpdate in days (default 30)");

  CLI::App* dev = app.add_subcommand("dev", "make the demo's full certificate set");
  dev->add_option("--out", out_dir, "output directory")->required();
  dev->add_option("--trust-domain", trust_domain, "trust domain (default zhongshan.corridor)");

  CLI::App* show = app.add_subcommand("show", "summarise a certificate");
  show->add_option("file", show_file, "certificate file (PEM or DER)")->required();
  show->add_flag("--json", json, "one JSON object, for scripts");

  std::string bundle_out;
  CLI::App* bundle =
      app.add_subcommand("bundle", "export the trust domain's CA certificate for peer exchanges");
  bundle->add_option("--ca-dir", ca_dir, "CA directory")->required();
  bundle->add_option("--out", bundle_out, "where to write the bundle (PEM)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    return Usage(e.what());
  }

  if (init->parsed()) {
    absl::Status s = InitCa(ca_dir, trust_domain, init_days);
    if (!s.ok()) return Fail(s);
    std::cout << "created CA for spiffe://" << trust_domain << " in " << ca_dir << "\n";
    return 0;
  }

  if (issue->parsed()) {
    if (node_opt->count() > 0 && kind != "agency") return Usage("--node is for --kind agency only");
    if (node.empty()) node = kDefaultNode;
    absl::StatusOr<std::string> td = CaTrustDomain(ca_dir);
    if (!td.ok()) return Fail(td.status());
    IssueOptions opts;
    if (kind == "agency") {
      opts.spiffe_id = AgencyNodeId(*td, name, node);
    } else if (kind == "auditor") {
      opts.spiffe_id = AuditorId(*td, name);
    } else if (kind == "admin") {
      opts.spiffe_id = AdminId(*td, name);
    } else {
      opts.spiffe_id = BrokerId(*td, name);
    }
    opts.dns_names = dns_names;
    opts.ip_addresses = ips;
    opts.days = issue_days;
    opts.out_dir = out_dir;
    opts.name = !file_name.empty()                           ? file_name
                : (kind == "agency" && node != kDefaultNode) ? name + "-" + node
                                                             : name;
    absl::StatusOr<IssuedCert> issued = Issue(ca_dir, opts);
    if (!issued.ok()) return Fail(issued.status());
    std::cout << "issued " << opts.spiffe_id << " serial " << issued->serial_hex << "\n"
              << "  cert " << issued->cert_path.string() << "\n"
              << "  key  " << issued->key_path.string() << "\n";
    return 0;
  }

  if (revoke->parsed()) {
    if (serial_opt->count() == 0 && cert_opt->count() == 0) {
      return Usage("revoke needs --serial HEX or --cert FILE");
    }
    std::string target = serial;
    if (cert_opt->count() > 0) {
      // Revoke() reads an all-hex argument as a serial; make a path unmistakable.
      std::filesystem::path p(cert_file);
      target = p.is_absolute() ? p.string() : (std::filesystem::path(".") / p).string();
    }
    absl::Status s = Revoke(ca_dir, target);
    if (!s.ok()) return Fail(s);
    std::cout << "revoked " << (cert_opt->count() > 0 ? cert_file : serial) << "\n";
    if (!crl_dir.empty()) {
      s = WriteCrl(ca_dir, crl_dir);
      if (!s.ok()) return Fail(s);
      std::cout << "wrote CRL in " << crl_dir << "\n";
    }
    return 0;
  }

  if (crl->parsed()) {
    absl::Status s = WriteCrl(ca_dir, crl_dir, crl_days);
    if (!s.ok()) return Fail(s);
    absl::StatusOr<std::string> file = CrlFileName(std::filesystem::path(ca_dir) / "ca.crt");
    std::cout << "wrote CRL "
              << (file.ok() ? (std::filesystem::path(crl_dir) / *file).string() : crl_dir) << "\n";
    return 0;
  }

  if (dev->parsed()) {
    if (trust_domain.empty()) trust_domain = "zhongshan.corridor";
    absl::Status s = MakeDevSet(out_dir, trust_domain);
    if (!s.ok()) return Fail(s);
    std::cout << "dev certificate set for spiffe://" << trust_domain << " in " << out_dir << "\n";
    return 0;
  }

  if (bundle->parsed()) {
    absl::StatusOr<TrustBundle> b = ExportTrustBundle(ca_dir, bundle_out);
    if (!b.ok()) return Fail(b.status());
    std::cout << "trust bundle of spiffe://" << b->trust_domain << " in " << bundle_out << "\n"
              << "  sha256 " << b->sha256_fingerprint << "\n"
              << "  not after " << b->not_after << "\n"
              << "Confirm the fingerprint with the peer's operator by another channel before\n"
              << "they list it as federation.peers[].ca.\n";
    return 0;
  }

  if (show->parsed()) {
    absl::StatusOr<CertSummary> summary = Describe(show_file);
    if (!summary.ok()) return Fail(summary.status());
    PrintSummary(*summary, json);
    return 0;
  }
  return Usage("no subcommand");
}

}  // namespace
}  // namespace corridor::certs

int main(int argc, char** argv) { return corridor::certs::Run(argc, argv); }
