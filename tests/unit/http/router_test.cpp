#include "http/router.h"

#include <gtest/gtest.h>

namespace gw::http {
namespace {

Route route(std::string method, std::string pattern) {
  return {std::move(method), std::move(pattern), std::nullopt,
          [](const Request&) { return json_response(200, nullptr); }, ""};
}

TEST(SplitPath, SegmentsAndRefusals) {
  EXPECT_EQ(split_path("/api/v1/queue/7"), (std::vector<std::string>{"api", "v1", "queue", "7"}));
  EXPECT_EQ(split_path("/"), std::vector<std::string>{});
  EXPECT_FALSE(split_path(""));
  EXPECT_FALSE(split_path("api/v1"));
  EXPECT_FALSE(split_path("/api//v1"));
  EXPECT_FALSE(split_path("/api/v1/"));
}

TEST(Router, MatchesLiteralsAndPlaceholders) {
  auto router =
      Router::create({route("GET", "/api/v1/queue"), route("POST", "/api/v1/queue/{id}/retry"),
                      route("DELETE", "/api/v1/queue/{id}")});
  ASSERT_TRUE(router.ok());
  auto m = router->match("POST", "/api/v1/queue/42/retry");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/api/v1/queue/{id}/retry");
  EXPECT_EQ(m.params.at("id"), "42");
  EXPECT_EQ(router->match("GET", "/api/v1/queue").kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(router->match("DELETE", "/api/v1/queue/9").params.at("id"), "9");
}

TEST(Router, UnknownPathIsNotFoundAndWrongMethodListsTheAllowedOnes) {
  auto router = Router::create({route("GET", "/api/v1/users"), route("POST", "/api/v1/users"),
                                route("DELETE", "/api/v1/users/{name}")});
  ASSERT_TRUE(router.ok());
  EXPECT_EQ(router->match("GET", "/api/v1/nothing").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router->match("GET", "/api/v1/users/a/b").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router->match("GET", "/api/v1/users/").kind, RouteMatch::Kind::kNotFound);
  auto m = router->match("PUT", "/api/v1/users");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(router->match("GET", "/api/v1/users/bob").allowed, std::vector<std::string>{"DELETE"});
}

TEST(Router, HeadIsAnsweredByGet) {
  auto router = Router::create({route("GET", "/health")});
  ASSERT_TRUE(router.ok());
  EXPECT_EQ(router->match("HEAD", "/health").kind, RouteMatch::Kind::kFound);
}

TEST(Router, TheMostLiteralPatternWinsWhateverTheOrder) {
  auto router =
      Router::create({route("GET", "/api/v1/certs/{name}"), route("GET", "/api/v1/certs/info")});
  ASSERT_TRUE(router.ok());
  auto m = router->match("GET", "/api/v1/certs/info");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/api/v1/certs/info");
  EXPECT_TRUE(m.params.empty());
  EXPECT_EQ(router->match("GET", "/api/v1/certs/other").route->pattern, "/api/v1/certs/{name}");
}

TEST(Router, RefusesMalformedOrDuplicateRoutes) {
  EXPECT_FALSE(Router::create({route("GET", "api/v1")}).ok());
  EXPECT_FALSE(Router::create({route("GET", "/api/{id")}).ok());
  EXPECT_FALSE(Router::create({route("GET", "/api/x{id}")}).ok());
  EXPECT_FALSE(Router::create({route("GET", "/a/"), route("GET", "/b")}).ok());
  EXPECT_FALSE(Router::create({route("GET", "/a"), route("GET", "/a")}).ok());
  EXPECT_TRUE(Router::create({route("GET", "/a"), route("POST", "/a")}).ok());
  Route no_handler = route("GET", "/a");
  no_handler.handler = nullptr;
  EXPECT_FALSE(Router::create({no_handler}).ok());
}

}  // namespace
}  // namespace gw::http
