#include "core/common/status.h"

#include <gtest/gtest.h>

namespace softserve::core {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError(std::to_string(x) + " is odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  SOFTSERVE_ASSIGN_OR_RETURN(int h, Half(x));
  SOFTSERVE_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  SOFTSERVE_RETURN_IF_ERROR(Half(x).status());
  return OkStatus();
}

TEST(StatusTest, CodesNamesAndMessages) {
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_EQ(OkStatus().ToString(), "OK");
  Status s = NotFoundError("prompt 'x' does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(static_cast<int>(s.code()), 5);  // the gRPC numbering
  EXPECT_EQ(s.ToString(), "NOT_FOUND: prompt 'x' does not exist");
  EXPECT_EQ(s.WithPrefix("store").message(), "store: prompt 'x' does not exist");
  EXPECT_EQ(static_cast<int>(UnauthenticatedError("").code()), 16);
  EXPECT_EQ(static_cast<int>(ResourceExhaustedError("").code()), 8);
}

TEST(StatusTest, MacrosPropagateErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, QuoteForMessageEscapesAndTruncatesClientText) {
  EXPECT_EQ(QuoteForMessage("plain"), "'plain'");
  EXPECT_EQ(QuoteForMessage(std::string("a\nb\x01\xff'\\", 7)), "'a\\x0ab\\x01\\xff\\'\\\\'");
  const std::string quoted = QuoteForMessage(std::string(10000, 'x'));
  EXPECT_EQ(quoted, "'" + std::string(200, 'x') + "'...(9800 more bytes)");
}

}  // namespace
}  // namespace softserve::core
