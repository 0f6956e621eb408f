// ActiveGenerations: the registry CancelGeneration reaches calls through. A tenant reaches only
// its own calls, every call with the id is ended, and a call that finished is gone.
#include "server/active_generations.h"

#include <gtest/gtest.h>

namespace softserve::server {
namespace {

TEST(ActiveGenerationsTest, EndsOnlyTheTenantsCallsWithThatId) {
  ActiveGenerations active;
  core::CancelFlag a1 = core::NewCancelFlag(), a2 = core::NewCancelFlag(), other = core::NewCancelFlag(),
                   bob = core::NewCancelFlag();
  auto r1 = active.Register("alice", "job-1", a1);
  auto r2 = active.Register("alice", "job-1", a2);  // ids need not be unique
  auto r3 = active.Register("alice", "job-2", other);
  auto r4 = active.Register("bob", "job-1", bob);
  EXPECT_EQ(active.EndEarly("carol", "job-1"), 0);
  EXPECT_FALSE(a1->load() || a2->load() || bob->load());
  EXPECT_EQ(active.EndEarly("alice", "job-1"), 2);
  EXPECT_TRUE(a1->load());
  EXPECT_TRUE(a2->load());
  EXPECT_FALSE(other->load());
  EXPECT_FALSE(bob->load());
  EXPECT_EQ(active.size(), 4);
  r1.reset();
  r2.reset();
  EXPECT_EQ(active.EndEarly("alice", "job-1"), 0);  // finished calls are gone
  EXPECT_EQ(active.size(), 2);
  r3.reset();
  r4.reset();
  EXPECT_EQ(active.size(), 0);
}

}  // namespace
}  // namespace softserve::server
