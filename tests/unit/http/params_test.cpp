#include "http/params.h"

#include <gtest/gtest.h>

namespace gw::http {
namespace {

TEST(ParseTime, IsoAndUnixMilliseconds) {
  EXPECT_EQ(*parse_time_ms("1714564800000"), 1714564800000);
  EXPECT_EQ(*parse_time_ms("2024-05-01"), 1714521600000);
  EXPECT_EQ(*parse_time_ms("2024-05-01T12:00:00Z"), 1714564800000);
  EXPECT_EQ(*parse_time_ms("2024-05-01T12:00Z"), 1714564800000);
  EXPECT_EQ(*parse_time_ms("2024-05-01T12:00:00"), 1714564800000);  // no zone: UTC
  EXPECT_EQ(*parse_time_ms("2024-05-01T12:00:00.250Z"), 1714564800250);
  EXPECT_EQ(*parse_time_ms("2024-05-01T12:00:00.2Z"), 1714564800200);
  EXPECT_EQ(*parse_time_ms("2024-05-01T14:00:00+02:00"), 1714564800000);
  EXPECT_EQ(*parse_time_ms("2024-05-01T07:30:00-0430"), 1714564800000);
}

TEST(ParseTime, RefusesAnythingElse) {
  for (const char* bad :
       {"", "yesterday", "2024-13-01", "2024-02-30", "2024-05-01T25:00Z", "2024-05-01T12:00:00+2",
        "2024-05-01T12:00:00Zjunk", "2024/05/01", "-5", "2024-05-01T12:00:00."}) {
    EXPECT_FALSE(parse_time_ms(bad).ok()) << bad;
  }
}

TEST(FormatTime, IsoUtcWithMilliseconds) {
  EXPECT_EQ(format_time(1714564800250), "2024-05-01T12:00:00.250Z");
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000Z");
  EXPECT_TRUE(time_or_null(0).is_null());
  EXPECT_EQ(*parse_time_ms(format_time(1714564800250)), 1714564800250);
}

TEST(ParseDuration, SecondsOrUnits) {
  EXPECT_EQ(parse_duration(Json(90))->count(), 90);
  EXPECT_EQ(parse_duration(Json("90s"))->count(), 90);
  EXPECT_EQ(parse_duration(Json("30m"))->count(), 1800);
  EXPECT_EQ(parse_duration(Json("12h"))->count(), 43200);
  EXPECT_EQ(parse_duration(Json("30d"))->count(), 2592000);
  for (const Json& bad : {Json("12"), Json("h"), Json("12w"), Json("-1h"), Json(1.5), Json(true),
                          Json("99999999999999d")}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad.dump();
  }
}

TEST(QueryInt, RangeAndTheParameterNamedInTheError) {
  Request r;
  EXPECT_EQ(*query_int(r, "limit", 100, 1, 1000), 100);
  r.query.emplace("limit", "50");
  EXPECT_EQ(*query_int(r, "limit", 100, 1, 1000), 50);
  for (const char* bad : {"0", "1001", "abc", "5x", "", "-3"}) {
    Request b;
    b.query.emplace("limit", bad);
    auto v = query_int(b, "limit", 100, 1, 1000);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_NE(v.error().message.find("`limit`"), std::string::npos) << v.error().message;
  }
}

TEST(CheckQueryNames, UnknownParametersAreRefusedByName) {
  Request r;
  r.query.emplace("limt", "5");
  auto st = check_query_names(r, {"limit", "offset"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("`limt`"), std::string::npos);
  Request ok;
  ok.query.emplace("offset", "5");
  EXPECT_TRUE(check_query_names(ok, {"limit", "offset"}).ok());
}

TEST(JsonBody, ContentTypeObjectAndKnownFields) {
  Request r;
  r.content_type = "application/json; charset=utf-8";
  r.body = R"({"name":"a"})";
  EXPECT_EQ((*json_body(r, {"name"}))["name"], "a");
  r.content_type = "application/x-www-form-urlencoded";
  EXPECT_FALSE(json_body(r, {"name"}).ok());
  r.content_type = "application/json";
  r.body = R"({"name":"a","extra":1})";
  auto unknown = json_body(r, {"name"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("`extra`"), std::string::npos);
  r.body = "[1]";
  EXPECT_FALSE(json_body(r, {"name"}).ok());
  r.body = "{not json";
  EXPECT_FALSE(json_body(r, {"name"}).ok());
  Request empty;
  EXPECT_TRUE(json_body(empty, {}, true).ok());
  EXPECT_FALSE(json_body(empty, {}, false).ok());
}

TEST(JsonBody, TypedFields) {
  const Json body = {{"s", "x"}, {"b", true}, {"n", 1}};
  EXPECT_EQ(**optional_string(body, "s"), "x");
  EXPECT_FALSE(optional_string(body, "missing")->has_value());
  EXPECT_FALSE(optional_string(body, "n").ok());
  EXPECT_TRUE(**optional_bool(body, "b"));
  EXPECT_FALSE(optional_bool(body, "s").ok());
}

TEST(DicomUid, Syntax) {
  EXPECT_TRUE(is_dicom_uid("1.2.840.10008.5.1.4.1.1.2"));
  EXPECT_TRUE(is_dicom_uid("2.25.1"));
  for (const char* bad : {"", ".1.2", "1.2.", "1..2", "1.2.a", "1.2;DROP", "../etc"}) {
    EXPECT_FALSE(is_dicom_uid(bad)) << bad;
  }
  EXPECT_FALSE(is_dicom_uid(std::string(65, '1')));
}

TEST(PathParams, IdAndUid) {
  Request r;
  r.path_params["id"] = "12";
  r.path_params["uid"] = "1.2.3";
  EXPECT_EQ(*path_id(r, "id"), 12);
  EXPECT_EQ(*path_uid(r, "uid"), "1.2.3");
  r.path_params["id"] = "0";
  EXPECT_FALSE(path_id(r, "id").ok());
  r.path_params["id"] = "x";
  EXPECT_FALSE(path_id(r, "id").ok());
  r.path_params["uid"] = "abc";
  EXPECT_FALSE(path_uid(r, "uid").ok());
}

}  // namespace
}  // namespace gw::http
