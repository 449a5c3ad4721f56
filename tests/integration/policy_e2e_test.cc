// Need-to-share policy at work over real mTLS: the demo policy's rules deliver,
// deny and redact; reload swaps bundles and refuses a bad one.
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>

#include "corridor/v1/audit.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/testing/envelopes.h"
#include "tests/testing/status_matchers.h"

namespace corridor::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Every delivery per agency, across several subscriptions.
class Inboxes {
 public:
  std::function<bool(const v1::Delivery&)> For(const std::string& agency) {
    return [this, agency](const v1::Delivery& d) {
      std::lock_guard<std::mutex> lock(mu_);
      got_[agency].push_back(d);
      cv_.notify_all();
      return true;
    };
  }
  std::vector<v1::Delivery> Wait(const std::string& agency, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return got_[agency].size() >= n; });
    return got_[agency];
  }
  std::vector<v1::Delivery> Now(const std::string& agency) {
    std::lock_guard<std::mutex> lock(mu_);
    return got_[agency];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<v1::Delivery>> got_;
};

class PolicyE2eTest : public BrokerFixture {
 protected:
  void Customize(broker::BrokerConfig& config) override {
    policy_dir_ = dir_.path() / "policy";
    std::filesystem::create_directories(policy_dir_);
    for (const char* f : {"demo.policy", "invariants.policy"}) {
      std::filesystem::copy_file(std::filesystem::path(CORRIDOR_SOURCE_DIR) / "deploy/policy" / f,
                                 policy_dir_ / f);
    }
    config.policy_dir = policy_dir_.string();
  }

  void SubscribeAll() {
    for (const char* a : {"zs-customs", "zs-msa", "zs-coastguard", "zh-police"}) {
      clients_[a] = Client(a);
      SubscriptionOptions o;
      o.open.set_name("all");
      o.open.add_topic_filters("*");
      subs_.push_back(clients_[a]->Subscribe(o, inboxes_.For(a)));
      ASSERT_TRUE(subs_.back()->WaitOpened(absl::Seconds(5)).ok()) << a;
    }
  }

  absl::Status Reload() {
    auto admin = Client("admin");
    grpc::ClientContext ctx;
    v1::ReloadPolicyResponse r;
    grpc::Status s = admin->admin_stub()->ReloadPolicy(&ctx, v1::ReloadPolicyRequest(), &r);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return absl::OkStatus();
  }

  std::string PolicyVersion() {
    auto st = Client("admin")->Status();
    return st.ok() ? st->policy_version() : "";
  }

  std::filesystem::path policy_dir_;
  Inboxes inboxes_;
  std::map<std::string, std::unique_ptr<AgencyClient>> clients_;
  std::vector<std::unique_ptr<Subscription>> subs_;
};

TEST_F(PolicyE2eTest, SmugglingTipOffGoesToPartnersWithTheInformantWithheld) {
  SubscribeAll();
  auto police = Client("zs-police");
  v1::Envelope tip = SampleTipOff("tip-1");
  tip.set_handling_code("H0");
  auto r = police->Submit(tip);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), UnorderedElementsAre("zs-customs", "zs-coastguard", "zs-msa"));
  EXPECT_EQ(r->withheld(), 1u);  // zh-police: another city, topic not named

  for (const char* a : {"zs-customs", "zs-coastguard"}) {
    auto got = inboxes_.Wait(a, 1);
    ASSERT_EQ(got.size(), 1u) << a;
    const auto& t = got[0].envelope().tip_off();
    EXPECT_FALSE(t.has_informant()) << a;
    EXPECT_EQ(t.narrative(), tip.tip_off().narrative()) << a;
    EXPECT_EQ(t.vessel().name(), "粤中山渔运12345");
    EXPECT_THAT(got[0].redacted_fields(), ElementsAre("tip_off.informant"));
  }
  auto msa = inboxes_.Wait("zs-msa", 1);
  ASSERT_EQ(msa.size(), 1u);
  EXPECT_FALSE(msa[0].envelope().tip_off().has_informant());
  EXPECT_TRUE(msa[0].envelope().tip_off().narrative().empty());
  EXPECT_EQ(msa[0].envelope().tip_off().location().waterway(), "磨刀门水道");  // vessel data stays
  EXPECT_THAT(msa[0].redacted_fields(), ElementsAre("tip_off.informant", "tip_off.narrative"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(inboxes_.Now("zh-police"), IsEmpty());
}

TEST_F(PolicyE2eTest, H1KeepsTipOffsFromMaritimeSafety) {
  SubscribeAll();
  auto r = Client("zs-police")->Submit(SampleTipOff("tip-h1"));  // H1
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), UnorderedElementsAre("zs-customs", "zs-coastguard"));
  EXPECT_EQ(r->withheld(), 2u);  // zs-msa (not law enforcement) and zh-police
}

TEST_F(PolicyE2eTest, OriginatorOnlyCaseRecordNeverLeaves) {
  SubscribeAll();
  v1::Envelope e;
  e.set_client_message_id("case-h3");
  e.set_kind(v1::MESSAGE_KIND_CASE_RECORD);
  e.set_topic("smuggling.frozen_goods");
  e.set_handling_code("H3");
  e.set_classification(v1::CLASSIFICATION_CONFIDENTIAL);
  e.set_case_ref("ZS-2026-0117");
  for (const char* a : {"zs-customs", "zs-msa", "zs-coastguard"}) e.add_addressees(a);
  auto* c = e.mutable_case_record();
  c->set_case_id("ZS-2026-0117");
  c->set_title("磨刀门冻品走私案");
  c->add_suspects()->set_name("张某");
  auto r = Client("zs-police")->Submit(e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), IsEmpty());
  EXPECT_EQ(r->withheld(), 4u);
  absl::SleepFor(absl::Milliseconds(300));
  for (const char* a : {"zs-customs", "zs-msa", "zs-coastguard", "zh-police"}) {
    EXPECT_THAT(inboxes_.Now(a), IsEmpty()) << a;
  }
}

TEST_F(PolicyE2eTest, MaritimeSafetyGetsCaseVesselsNotSuspects) {
  SubscribeAll();
  v1::Envelope e;
  e.set_client_message_id("case-h0");
  e.set_kind(v1::MESSAGE_KIND_CASE_RECORD);
  e.set_topic("smuggling.frozen_goods");
  e.set_handling_code("H0");
  e.set_classification(v1::CLASSIFICATION_RESTRICTED);
  e.set_case_ref("ZS-2026-0118");
  auto* c = e.mutable_case_record();
  c->set_case_id("ZS-2026-0118");
  auto* s = c->add_suspects();
  s->set_name("李某");
  s->set_id_number("440000199001011234");
  c->add_vessels()->set_name("粤中山渔运12345");
  c->set_narrative("嫌疑人供述");
  auto r = Client("zs-police")->Submit(e);
  ASSERT_TRUE(r.ok()) << r.status();
  auto msa = inboxes_.Wait("zs-msa", 1);
  ASSERT_EQ(msa.size(), 1u);
  const auto& got = msa[0].envelope().case_record();
  EXPECT_EQ(got.vessels(0).name(), "粤中山渔运12345");
  EXPECT_TRUE(got.suspects(0).name().empty());
  EXPECT_TRUE(got.suspects(0).id_number().empty());
  EXPECT_TRUE(got.narrative().empty());
  auto customs = inboxes_.Wait("zs-customs", 1);
  ASSERT_EQ(customs.size(), 1u);
  EXPECT_EQ(customs[0].envelope().case_record().suspects(0).name(), "李某");  // law enforcement
}

TEST_F(PolicyE2eTest, PatrolPositionsStayInZoneExceptForCoastGuard) {
  SubscribeAll();
  v1::Envelope e;
  e.set_client_message_id("patrol-1");
  e.set_kind(v1::MESSAGE_KIND_PATROL_REPORT);
  e.set_topic("patrol.positions");
  e.set_handling_code("H0");
  e.set_classification(v1::CLASSIFICATION_RESTRICTED);
  e.set_defence_zone("zs-south");
  auto* p = e.mutable_patrol_report();
  p->mutable_unit()->set_id("粤中山公安 0302");
  p->set_zone("zs-south");
  auto* tp = p->add_track();
  tp->mutable_point()->set_lat(22.3);
  tp->mutable_point()->set_lon(113.5);
  auto r = Client("zs-police")->Submit(e);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->recipients(), UnorderedElementsAre("zs-msa", "zs-coastguard"));
  EXPECT_EQ(r->withheld(), 2u);  // zs-customs (zs-north only), zh-police
}

TEST_F(PolicyE2eTest, ReloadSwapsTheBundleAndRefusesABadOne) {
  SubscribeAll();
  auto police = Client("zs-police");
  const std::string v1_version = PolicyVersion();
  ASSERT_FALSE(v1_version.empty());

  // A valid change: customs no longer receives tip-offs.
  {
    std::ofstream(policy_dir_ / "zz-local.policy")
        << "forbid no-tipoffs-to-customs (on tip_off, to agency:zs-customs)\n"
           "  because \"local change for the test\";\n";
  }
  ASSERT_TRUE(Reload().ok());
  const std::string v2_version = PolicyVersion();
  EXPECT_NE(v2_version, v1_version);
  auto r = police->Submit(SampleTipOff("after-reload"));
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->recipients(), ElementsAre("zs-coastguard"));

  // A broken bundle is refused with its position; the running one stays.
  { std::ofstream(policy_dir_ / "zz-local.policy") << "permit broken (on tip_off\n"; }
  absl::Status refused = Reload();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zz-local.policy:")));
  EXPECT_EQ(PolicyVersion(), v2_version);
  auto r2 = police->Submit(SampleTipOff("after-bad-reload"));
  ASSERT_TRUE(r2.ok());
  EXPECT_THAT(r2->recipients(), ElementsAre("zs-coastguard"));

  // A bundle that breaks an invariant cannot be loaded either: an operator
  // replaces demo.policy with one that lost its originator-only forbid.
  std::filesystem::remove(policy_dir_ / "zz-local.policy");
  std::filesystem::copy_file(
      std::filesystem::path(CORRIDOR_SOURCE_DIR) / "tests/policy/testdata/bad_h3/bad.policy",
      policy_dir_ / "demo.policy", std::filesystem::copy_options::overwrite_existing);
  EXPECT_THAT(Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("share-every-case-record")));
  EXPECT_EQ(PolicyVersion(), v2_version);
}

// Policy text reaches audit entries (a rule's `because` is each decision's
// reason): text that is not UTF-8 made every later query of the log fail for
// good. Now the reload is refused, naming the file, line and rule, and the
// log stays readable.
TEST_F(PolicyE2eTest, ReloadRefusesBecauseTextThatIsNotUtf8AndTheLogStaysReadable) {
  SubscribeAll();
  auto police = Client("zs-police");
  const std::string before = PolicyVersion();
  {
    std::ofstream(policy_dir_ / "zz-local.policy", std::ios::binary)
        << "forbid gbk-reason (on tip_off, to agency:zs-customs)\n"
           "  because \"\xB2\xBB\xB9\xB2\xCF\xED\";\n";  // "不共享" in GBK
  }
  absl::Status refused = Reload();
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zz-local.policy:2:")));
  EXPECT_THAT(refused.message(), HasSubstr("'because' text of rule 'gbk-reason'"));
  EXPECT_THAT(refused.message(), HasSubstr("not valid UTF-8"));
  EXPECT_EQ(PolicyVersion(), before);

  // Invalid UTF-8 anywhere else in a policy file (a comment) is refused too.
  {
    std::ofstream(policy_dir_ / "zz-local.policy", std::ios::binary)
        << "# \xB2\xBB\n"
           "forbid fine (on tip_off, to agency:zs-customs) because \"ok\";\n";
  }
  EXPECT_THAT(Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("zz-local.policy:1:3: error: not valid UTF-8")));
  EXPECT_EQ(PolicyVersion(), before);

  // Decisions go on under the running bundle, and every entry stays readable.
  auto r = police->Submit(SampleTipOff("after-gbk-reload"));
  ASSERT_TRUE(r.ok()) << r.status();
  auto channel = MakeChannel(OptionsFor("auditor"));
  ASSERT_TRUE(channel.ok());
  auto audit = v1::Audit::NewStub(*channel);
  absl::SleepFor(absl::Milliseconds(300));
  grpc::ClientContext ctx;
  auto reader = audit->Query(&ctx, v1::AuditQuery());
  v1::AuditQueryResponse page;
  size_t records = 0;
  while (reader->Read(&page)) {
    for (const auto& rec : page.records()) {
      EXPECT_TRUE(rec.unreadable().empty()) << rec.entry().index();
      ++records;
    }
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_GE(records, 4u);  // the collection and its disclosures or denials
}

// A reload error quotes the offending line: a 400 KB line made a message
// larger than a client accepts in its trailers, and the client saw
// RESOURCE_EXHAUSTED instead of the error.
TEST_F(PolicyE2eTest, ReloadErrorOnAHugeLineIsShortAndStillInvalidArgument) {
  const std::string before = PolicyVersion();
  {
    std::ofstream out(policy_dir_ / "zz-local.policy", std::ios::binary);
    out << "forbid long-line (on tip_off, to agency:zs-customs) when { message.topic == \"";
    for (int i = 0; i < 400 * 1024 / 3; ++i) out << "\xE4\xB8\xAD";  // 中, 400 KB of it
    out << "\" } when { message.topci == \"x\" };\n";  // the error is at the end of the line
  }
  absl::Status refused = Reload();
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("zz-local.policy:1:")));
  EXPECT_LT(refused.message().size(), 4096u);
  EXPECT_THAT(refused.message(), HasSubstr("topci"));
  EXPECT_THAT(refused.message(), HasSubstr("\xE2\x80\xA6"));  // … where the line was cut
  EXPECT_EQ(PolicyVersion(), before);
  // A message too long for any other reason is cut at the gRPC boundary.
  {
    std::ofstream out(policy_dir_ / "zz-local.policy", std::ios::binary);
    for (int i = 0; i < 2000; ++i) {
      out << "permit p" << i << " (on tip_off) when { message.topci == \"x\" };\n";
    }
  }
  refused = Reload();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message cut")));
  EXPECT_LT(refused.message().size(), 4096u);
}

}  // namespace
}  // namespace corridor::testing
