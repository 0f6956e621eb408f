// SOFTSERVE_SKIP() << "why": GTEST_SKIP with a marker CTest recognises (tests/CMakeLists.txt).
// gtest also prints "[  SKIPPED ]" (and a "Skipped" location) for every test of a suite whose
// SetUpTestSuite failed, e.g. a server that did not start: CTest must count those as failed,
// so only this marker makes a test count as skipped.
#ifndef SOFTSERVE_TESTS_TESTING_SKIP_H_
#define SOFTSERVE_TESTS_TESTING_SKIP_H_

#include <gtest/gtest.h>

#define SOFTSERVE_SKIP() GTEST_SKIP() << "softserve-skip: "

#endif  // SOFTSERVE_TESTS_TESTING_SKIP_H_
