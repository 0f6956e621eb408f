#include "core/common/json.h"

#include <gtest/gtest.h>

namespace softserve::core {
namespace {

TEST(JsonTest, ParsesDocumentsWithTypesAndOrder) {
  auto v = ParseJson(R"( {"b": [1, -2, 3.5e2, true, null], "a": {"s": "x\"y\u00e9\n"}, "big": 9007199254740993} )");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(v->is_object());
  EXPECT_EQ(v->object()[0].first, "b");  // file order kept
  const JsonValue& b = *v->Find("b");
  EXPECT_TRUE(b.array()[0].is_int());
  EXPECT_EQ(b.array()[1].int_value(), -2);
  EXPECT_DOUBLE_EQ(b.array()[2].number(), 350.0);
  EXPECT_TRUE(b.array()[3].bool_value());
  EXPECT_TRUE(b.array()[4].is_null());
  EXPECT_EQ(v->Find("a")->Find("s")->string_value(), "x\"y\xC3\xA9\n");
  EXPECT_EQ(v->Find("big")->int_value(), 9007199254740993LL);  // exact beyond 2^53
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonTest, SerializeRoundTrips) {
  auto v = ParseJson(R"({"k":[1,"two",{"x":null}],"f":0.5,"e":"\u0001"})");
  ASSERT_TRUE(v.ok());
  auto again = ParseJson(v->Serialize());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Serialize(), v->Serialize());
  EXPECT_EQ(v->Serialize(), R"({"k":[1,"two",{"x":null}],"f":0.5,"e":"\u0001"})");
}

TEST(JsonTest, SurrogatePairsDecode) {
  auto v = ParseJson(R"("\ud83d\ude00")");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->string_value(), "\xF0\x9F\x98\x80");
}

TEST(JsonTest, RejectsMalformedAndHostileInput) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "tru", "01", "1.", "-",
                          "\"unterminated", "\"\\x\"", "\"\\ud800\"", "{\"a\":1,\"a\":2}",
                          "[1] 2", "\"ctl\x01\"", "{1:2}"}) {
    auto v = ParseJson(bad);
    EXPECT_FALSE(v.ok()) << "accepted: " << bad;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    }
  }
  // Deep nesting is refused, not a stack overflow.
  std::string deep(100000, '[');
  auto d = ParseJson(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nesting"), std::string::npos);
  JsonParseLimits small;
  small.max_bytes = 4;
  EXPECT_FALSE(ParseJson("[1,2,3]", small).ok());
}

}  // namespace
}  // namespace softserve::core
