// PlanStep is a pure function: tested with a fake clock, no threads.
#include "core/engine/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace softserve::core {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const TimePoint kNow = TimePoint() + std::chrono::hours(1);

PendingWork Job(uint64_t id, const std::string& tenant, int64_t rows = 1, int64_t kv = 10,
                int64_t prefill = 5) {
  PendingWork w;
  w.id = id;
  w.tenant = tenant;
  w.rows = rows;
  w.kv_tokens = kv;
  w.prefill_tokens = prefill;
  return w;
}

TEST(SchedulerTest, InterleavesTenantsRoundRobinKeepingEachFifo) {
  std::vector<PendingWork> q = {Job(1, "heavy"), Job(2, "heavy"), Job(3, "heavy"), Job(4, "light"),
                                Job(5, "heavy"), Job(6, "light")};
  SchedulerLimits limits;
  limits.max_rows = 4;
  StepPlan p = PlanStep(q, {}, limits, kNow, "");
  EXPECT_THAT(p.admit, ElementsAre(1, 4, 2, 6));
  EXPECT_EQ(p.tenant_cursor, "light");
  // Next step resumes after the last tenant served.
  std::vector<PendingWork> rest = {Job(3, "heavy"), Job(5, "heavy"), Job(7, "light")};
  limits.max_rows = 1;
  EXPECT_THAT(PlanStep(rest, {}, limits, kNow, "light").admit, ElementsAre(3));
  EXPECT_THAT(PlanStep(rest, {}, limits, kNow, "heavy").admit, ElementsAre(7));
}

TEST(SchedulerTest, RespectsRowsAndKvTokensBesideRunningWork) {
  SchedulerLimits limits;
  limits.max_rows = 8;
  limits.max_tokens_in_flight = 100;
  std::vector<RunningWork> running = {{100, "", 0, 4, 60, NoDeadline(), false}};
  std::vector<PendingWork> q = {Job(1, "a", 4, 30), Job(2, "b", 1, 20), Job(3, "c", 1, 5)};
  StepPlan p = PlanStep(q, running, limits, kNow, "");
  // Job 1 fits rows (4+4) and KV (60+30); job 2 would exceed KV (110); job 3 fits only rows? 9 > 8.
  EXPECT_THAT(p.admit, ElementsAre(1));
}

TEST(SchedulerTest, BlockedHeadKeepsItsTenantsOrder) {
  SchedulerLimits limits;
  limits.max_rows = 3;
  std::vector<PendingWork> q = {Job(1, "a", 4), Job(2, "a", 1), Job(3, "b", 1)};
  // Job 1 (4 rows) cannot fit; job 2 must not overtake it; tenant b proceeds.
  EXPECT_THAT(PlanStep(q, {}, limits, kNow, "").admit, ElementsAre(3));
}

TEST(SchedulerTest, PrefillBudgetButFirstJobAlwaysAdmitted) {
  SchedulerLimits limits;
  limits.max_prefill_tokens = 100;
  std::vector<PendingWork> q = {Job(1, "a", 1, 10, 500), Job(2, "b", 1, 10, 5)};
  EXPECT_THAT(PlanStep(q, {}, limits, kNow, "").admit, ElementsAre(1));
  std::vector<PendingWork> q2 = {Job(1, "a", 1, 10, 60), Job(2, "b", 1, 10, 30), Job(3, "c", 1, 10, 30)};
  EXPECT_THAT(PlanStep(q2, {}, limits, kNow, "").admit, ElementsAre(1, 2));
}

TEST(SchedulerTest, DeadlinesAndCancellationEndWork) {
  std::vector<PendingWork> q = {Job(1, "a"), Job(2, "a"), Job(3, "b")};
  q[0].deadline = kNow - std::chrono::milliseconds(1);
  q[1].cancelled = true;
  std::vector<RunningWork> running = {{10, "x", 0, 1, 5, kNow, false}, {11, "x", 0, 1, 5, NoDeadline(), true},
                                      {12, "x", 0, 1, 5, kNow + std::chrono::seconds(1), false}};
  StepPlan p = PlanStep(q, running, SchedulerLimits{}, kNow, "");
  EXPECT_THAT(p.expired_queued, ElementsAre(1));
  EXPECT_THAT(p.cancelled_queued, ElementsAre(2));
  EXPECT_THAT(p.expired_running, ElementsAre(10));  // deadline == now counts as passed
  EXPECT_THAT(p.cancelled_running, ElementsAre(11));
  EXPECT_THAT(p.admit, ElementsAre(3));
}

TEST(SchedulerTest, EndedRunningWorkFreesItsRows) {
  SchedulerLimits limits;
  limits.max_rows = 2;
  std::vector<RunningWork> running = {{10, "x", 0, 2, 5, NoDeadline(), true}};
  EXPECT_THAT(PlanStep({Job(1, "a", 2)}, running, limits, kNow, "").admit, ElementsAre(1));
  EXPECT_THAT(PlanStep({}, {}, limits, kNow, "").admit, IsEmpty());
}

TEST(SchedulerTest, SameKeyPolicyAdmitsOnlyTheBatchPrompt) {
  SchedulerLimits limits;
  limits.policy = BatchPolicy::kSameKey;
  std::vector<PendingWork> q = {Job(1, "a"), Job(2, "b"), Job(3, "c"), Job(4, "a")};
  q[0].batch_key = 7;
  q[1].batch_key = 8;
  q[2].batch_key = 7;
  q[3].batch_key = 7;
  // Empty batch: the first job chosen fixes the key; only jobs with key 7 join it.
  EXPECT_THAT(PlanStep(q, {}, limits, kNow, "").admit, ElementsAre(1, 3, 4));
  // A running batch of key 8 admits only key 8.
  std::vector<RunningWork> running = {{50, "x", 8, 1, 5, NoDeadline(), false}};
  EXPECT_THAT(PlanStep(q, running, limits, kNow, "").admit, ElementsAre(2));
  limits.policy = BatchPolicy::kMixed;
  EXPECT_THAT(PlanStep(q, running, limits, kNow, "").admit, ElementsAre(1, 2, 3, 4));
  // One tenant, prompts interleaved: every queued job of the chosen prompt joins, not just a
  // same-prompt prefix of the queue.
  limits.policy = BatchPolicy::kSameKey;
  std::vector<PendingWork> one = {Job(1, "t"), Job(2, "t"), Job(3, "t"), Job(4, "t"), Job(5, "t")};
  for (size_t i = 0; i < one.size(); ++i) one[i].batch_key = i % 2 == 0 ? 7 : 8;
  EXPECT_THAT(PlanStep(one, {}, limits, kNow, "").admit, ElementsAre(1, 3, 5));
}

RunningWork Running(uint64_t id, const std::string& tenant, int64_t rows, uint64_t admit_order,
                    int64_t kv = 10) {
  RunningWork r;
  r.id = id;
  r.tenant = tenant;
  r.rows = rows;
  r.kv_tokens = kv;
  r.admit_order = admit_order;
  r.preemptible = true;
  return r;
}

TEST(SchedulerTest, AnIdleServerGivesOneTenantEveryRow) {
  SchedulerLimits limits;
  limits.max_rows = 64;
  std::vector<PendingWork> q;
  for (uint64_t i = 1; i <= 4; ++i) q.push_back(Job(i, "flood", 16, 100));
  StepPlan p = PlanStep(q, {}, limits, kNow, "");
  EXPECT_THAT(p.admit, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(p.preempt, IsEmpty());
}

TEST(SchedulerTest, ArrivingTenantPreemptsTheNewestJobOfTheTenantOverItsShare) {
  SchedulerLimits limits;
  limits.max_rows = 64;
  std::vector<RunningWork> running = {Running(1, "flood", 16, 1), Running(2, "flood", 16, 2),
                                      Running(3, "flood", 16, 3), Running(4, "flood", 16, 4)};
  std::vector<PendingWork> q = {Job(10, "flood", 16), Job(20, "quiet", 1)};
  StepPlan p = PlanStep(q, running, limits, kNow, "");
  // Two active tenants: a share of 32 rows each. Freeing one row takes one job: the newest.
  EXPECT_THAT(p.preempt, ElementsAre(4));
  EXPECT_THAT(p.admit, ElementsAre(20));
}

TEST(SchedulerTest, PreemptsOnlyWhatTheArrivalNeedsAndNeverInVain) {
  SchedulerLimits limits;
  limits.max_rows = 8;
  // a and b hold 4 rows each; c's arrival makes three tenants, a share of 2: a and b are equally
  // far over it, so the newest job goes, and one job frees enough.
  std::vector<RunningWork> fair = {Running(1, "a", 4, 1), Running(2, "b", 4, 2)};
  StepPlan p = PlanStep({Job(10, "c", 1)}, fair, limits, kNow, "");
  EXPECT_THAT(p.preempt, ElementsAre(2));
  EXPECT_THAT(p.admit, ElementsAre(10));
  // A job that could not fit even after preemption preempts nobody.
  std::vector<RunningWork> one = {Running(1, "a", 6, 1)};
  StepPlan big = PlanStep({Job(10, "c", 9)}, one, limits, kNow, "");
  EXPECT_THAT(big.preempt, IsEmpty());
  EXPECT_THAT(big.admit, IsEmpty());
  limits.preemption = false;
  StepPlan off = PlanStep({Job(10, "c", 1)}, fair, limits, kNow, "");
  EXPECT_THAT(off.preempt, IsEmpty());
  EXPECT_THAT(off.admit, IsEmpty());
}

TEST(SchedulerTest, PreemptsFromTheTenantFurthestOverItsShareAndCountsKvTokens) {
  SchedulerLimits limits;
  limits.max_rows = 12;
  limits.max_tokens_in_flight = 1000;
  std::vector<RunningWork> running = {Running(1, "a", 2, 1, 100), Running(2, "b", 4, 2, 100),
                                      Running(3, "b", 4, 3, 100), Running(4, "a", 2, 4, 100)};
  // Three tenants: share 4 rows. b holds 8 (4 over), a holds 4 (within).
  StepPlan p = PlanStep({Job(10, "c", 4, 50)}, running, limits, kNow, "");
  EXPECT_THAT(p.preempt, ElementsAre(3));
  EXPECT_THAT(p.admit, ElementsAre(10));
  // KV: rows are free but tokens are not; c is within its share of tokens (333).
  std::vector<RunningWork> kv_heavy = {Running(1, "a", 1, 1, 500), Running(2, "a", 1, 2, 480)};
  StepPlan q = PlanStep({Job(10, "c", 1, 300)}, kv_heavy, limits, kNow, "");
  EXPECT_THAT(q.preempt, ElementsAre(2));
  EXPECT_THAT(q.admit, ElementsAre(10));
}

TEST(SchedulerTest, OverShareWorkWaitsWhileAnotherTenantWaitsAndFillsIdleCapacityOtherwise) {
  SchedulerLimits limits;
  limits.max_rows = 4;
  limits.preemption = false;
  // "a" already holds 2 (its share); "b" waits for 3 rows that are not free: a's queued job
  // must not take the last free rows while b's within-share head waits.
  std::vector<RunningWork> running = {Running(1, "a", 2, 1)};
  std::vector<PendingWork> q = {Job(10, "a", 1), Job(20, "b", 3)};
  EXPECT_THAT(PlanStep(q, running, limits, kNow, "").admit, IsEmpty());
  // Nobody else waits: the over-share job fills the free rows (work-conserving).
  EXPECT_THAT(PlanStep({Job(10, "a", 1), Job(11, "a", 1)}, running, limits, kNow, "").admit, ElementsAre(10, 11));
}

// A tenant between two requests still holds its share for tenant_idle_grace: the flood does not
// take the rows back (and get preempted and recomputed again at the next request).
TEST(SchedulerTest, ARecentlyActiveTenantKeepsItsShareFreeFromOverShareWork) {
  SchedulerLimits limits;
  limits.max_rows = 64;
  std::vector<RunningWork> running = {Running(1, "flood", 16, 1), Running(2, "flood", 16, 2), Running(3, "flood", 16, 3)};
  std::vector<PendingWork> q = {Job(4, "flood", 16)};  // the preempted job, back in the queue
  const std::vector<TenantActivity> recent = {{"quiet", kNow - std::chrono::milliseconds(5)}};
  EXPECT_THAT(PlanStep(q, running, limits, kNow, "", recent).admit, IsEmpty());
  // After the grace period the quiet tenant no longer counts: the flood has every row.
  const std::vector<TenantActivity> old = {{"quiet", kNow - std::chrono::seconds(5)}};
  EXPECT_THAT(PlanStep(q, running, limits, kNow, "", old).admit, ElementsAre(4));
}

TEST(SchedulerTest, EachTenantGetsItsShareOfTheStepsEncoderBudget) {
  SchedulerLimits limits;
  limits.max_prefill_tokens = 1000;
  std::vector<PendingWork> q = {Job(1, "long", 1, 10, 400), Job(2, "long", 1, 10, 400), Job(3, "long", 1, 10, 400),
                                Job(4, "short", 1, 10, 10)};
  // Two active tenants: 500 encoder tokens each per step; long's first job always fits.
  EXPECT_THAT(PlanStep(q, {}, limits, kNow, "").admit, ElementsAre(1, 4));
  // Alone, a tenant may use the whole budget.
  q.pop_back();
  EXPECT_THAT(PlanStep(q, {}, limits, kNow, "").admit, ElementsAre(1, 2));
}

TEST(SchedulerTest, LightTenantsArePriorityWhileAnotherIsHeavy) {
  SchedulerLimits limits;
  limits.max_rows = 8;  // two tenants: a share of 4 rows; heavy from 2
  std::vector<RunningWork> running = {Running(1, "flood", 6, 1), Running(2, "quiet", 1, 2)};
  StepPlan p = PlanStep({}, running, limits, kNow, "");
  EXPECT_THAT(p.priority_tenants, ElementsAre("quiet"));
  EXPECT_THAT(p.over_share_tenants, ElementsAre("flood"));
  // Both use half their share or more: nobody is light.
  std::vector<RunningWork> even = {Running(1, "a", 3, 1), Running(2, "b", 2, 2)};
  EXPECT_THAT(PlanStep({}, even, limits, kNow, "").priority_tenants, IsEmpty());
  // Nobody heavy: no priority.
  std::vector<RunningWork> light = {Running(1, "a", 1, 1), Running(2, "b", 1, 2)};
  EXPECT_THAT(PlanStep({}, light, limits, kNow, "").over_share_tenants, IsEmpty());
  EXPECT_THAT(PlanStep({}, light, limits, kNow, "").priority_tenants, IsEmpty());
}

TEST(SchedulerTest, SameKeyPolicyNeverPreempts) {
  SchedulerLimits limits;
  limits.max_rows = 2;
  limits.policy = BatchPolicy::kSameKey;
  std::vector<RunningWork> running = {Running(1, "a", 2, 1)};
  StepPlan p = PlanStep({Job(10, "b", 1)}, running, limits, kNow, "");
  EXPECT_THAT(p.preempt, IsEmpty());
}

}  // namespace
}  // namespace softserve::core
