// Runs the built corridor-certs binary (path from CORRIDOR_CERTS_BIN).
#include <openssl/x509.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "certs/internal/x509_util.h"
#include "certs/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/certs/test_util.h"
#include "tests/testing/status_matchers.h"

#ifndef CORRIDOR_CERTS_BIN
#error "CORRIDOR_CERTS_BIN must name the corridor-certs binary"
#endif

namespace corridor::certs {
namespace {

namespace fs = std::filesystem;
using ::corridor::certs::testing::ScratchDir;
using ::corridor::certs::testing::Slurp;
using ::corridor::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

class CliTest : public ::testing::Test {
 protected:
  RunResult Run(const std::vector<std::string>& args) {
    std::string cmd = ShellQuote(CORRIDOR_CERTS_BIN);
    for (const std::string& a : args) cmd += " " + ShellQuote(a);
    const fs::path err_file = scratch_.path() / "stderr.txt";
    cmd += " 2>" + ShellQuote(err_file.string());
    RunResult r;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "popen failed: " << cmd;
      return r;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    const int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = Slurp(err_file);
    return r;
  }

  fs::path dir() const { return scratch_.path(); }
  ScratchDir scratch_;
};

TEST_F(CliTest, DevThenShowJson) {
  const fs::path dev = dir() / "dev";
  RunResult r = Run({"dev", "--out", dev.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dev / "zs-police.key"));
  EXPECT_TRUE(fs::exists(dev / "broker.crt"));

  r = Run({"show", "--json", (dev / "zs-police.crt").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<CertSummary> s = Describe(dev / "zs-police.crt");
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(r.out, StartsWith("{"));
  EXPECT_THAT(
      r.out,
      AllOf(HasSubstr("\"uri_san\": \"spiffe://zhongshan.corridor/agency/zs-police/node1\""),
            HasSubstr("\"subject\": \"CN=node1\""),
            HasSubstr("\"serial_hex\": \"" + s->serial_hex + "\""),
            HasSubstr("\"not_after\": \"" + s->not_after + "\""), HasSubstr("\"dns_names\": []")));

  r = Run({"show", "--json", (dev / "broker.crt").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("\"dns_names\": [\"localhost\"]"),
                           HasSubstr("\"ip_addresses\": [\"127.0.0.1\", \"::1\"]")));

  r = Run({"show", (dev / "broker.crt").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("spiffe://zhongshan.corridor/broker/zs-broker"));

  // A second dev run is a no-op and still succeeds.
  const std::string key = Slurp(dev / "zs-police.key");
  r = Run({"dev", "--out", dev.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Slurp(dev / "zs-police.key"), key);
}

TEST_F(CliTest, UsageErrorsExit2) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"init", "--trust-domain", "td"},
           {"issue", "--ca-dir", "x", "--kind", "officer", "--name", "n", "--out", "o"},
           {"issue", "--ca-dir", "x", "--kind", "admin", "--name", "n", "--node", "n2", "--out",
            "o"},
           {"revoke", "--ca-dir", "x"},
           {"revoke", "--ca-dir", "x", "--serial", "ab", "--cert", "c.crt"},
           {"show"},
           {"dev", "--out", "o", "--bogus"}}) {
    RunResult r = Run(args);
    std::string joined;
    for (const std::string& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith("corridor-certs: ")) << joined;
  }
  EXPECT_FALSE(fs::exists("o"));
}

TEST_F(CliTest, FailuresExit1WithMessageAndNoKeyMaterial) {
  const fs::path ca = dir() / "ca";
  ASSERT_EQ(
      Run({"init", "--ca-dir", ca.string(), "--trust-domain", "zhongshan.corridor"}).exit_code, 0);
  RunResult r = Run({"init", "--ca-dir", ca.string(), "--trust-domain", "zhongshan.corridor"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(StartsWith("corridor-certs: "), HasSubstr("ALREADY_EXISTS")));

  r = Run({"issue", "--ca-dir", ca.string(), "--kind", "agency", "--name", "ZS_Police", "--out",
           (dir() / "out").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(StartsWith("corridor-certs: "), HasSubstr("ZS_Police")));

  // Showing a key file fails without echoing the key.
  r = Run({"show", "--json", (ca / "ca.key").string()});
  EXPECT_EQ(r.exit_code, 1);
  const std::string key = Slurp(ca / "ca.key");
  const std::string key_body = key.substr(key.find('\n') + 1, 40);
  EXPECT_THAT(r.err + r.out, AllOf(Not(HasSubstr("PRIVATE KEY")), Not(HasSubstr(key_body))));
}

TEST_F(CliTest, InitIssueRevokeCrl) {
  const fs::path ca = dir() / "ca";
  const fs::path out = dir() / "out";
  const fs::path crl = dir() / "crl";
  ASSERT_EQ(
      Run({"init", "--ca-dir", ca.string(), "--trust-domain", "zhuhai.corridor", "--days", "100"})
          .exit_code,
      0);

  RunResult r = Run({"issue", "--ca-dir", ca.string(), "--kind", "agency", "--name", "zh-police",
                     "--node", "node2", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("spiffe://zhuhai.corridor/agency/zh-police/node2"));
  EXPECT_THAT(r.out, Not(HasSubstr("PRIVATE KEY")));
  const fs::path node2 = out / "zh-police-node2.crt";
  ASSERT_TRUE(fs::exists(node2));
  EXPECT_EQ(ReadUriSan(node2).value_or(""), "spiffe://zhuhai.corridor/agency/zh-police/node2");

  r = Run({"issue", "--ca-dir", ca.string(), "--kind", "broker", "--name", "zh-broker", "--out",
           out.string(), "--file-name", "b", "--dns", "localhost", "--ip", "127.0.0.1", "--days",
           "30"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<CertSummary> b = Describe(out / "b.crt");
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->uri_san, "spiffe://zhuhai.corridor/broker/zh-broker");
  EXPECT_THAT(b->dns_names, ::testing::ElementsAre("localhost"));

  r = Run({"revoke", "--ca-dir", ca.string(), "--cert", node2.string(), "--crl-dir", crl.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<std::string> crl_name = CrlFileName(ca / "ca.crt");
  ASSERT_THAT(crl_name, IsOk());
  absl::StatusOr<internal::X509CrlPtr> list = internal::ReadCrlFile(crl / *crl_name);
  ASSERT_THAT(list, IsOk());
  absl::StatusOr<internal::Asn1IntegerPtr> serial =
      internal::SerialFromHex(Describe(node2).value().serial_hex);
  ASSERT_THAT(serial, IsOk());
  X509_REVOKED* entry = nullptr;
  EXPECT_EQ(X509_CRL_get0_by_serial(list->get(), &entry, serial->get()), 1);
  serial = internal::SerialFromHex(b->serial_hex);
  EXPECT_EQ(X509_CRL_get0_by_serial(list->get(), &entry, serial->get()), 0);

  r = Run({"revoke", "--ca-dir", ca.string(), "--serial", "0123abcd"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  r = Run({"crl", "--ca-dir", ca.string(), "--crl-dir", crl.string(), "--days", "7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(*crl_name));
}

}  // namespace
}  // namespace corridor::certs
