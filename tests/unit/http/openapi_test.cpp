// docs/openapi.yaml and the route table the server registers agree: the same (method, path)
// pairs, and each operation's x-required-role and security match the route's least role.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "api_fixture.h"

namespace gw::http {
namespace {

std::filesystem::path openapi_path() {
  // tests/unit/http/openapi_test.cpp -> docs/openapi.yaml
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path() /
         "docs" / "openapi.yaml";
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

class OpenApiTest : public ApiFixture {};

TEST_F(OpenApiTest, DocumentAndRouteTableAgree) {
  const YAML::Node doc = YAML::LoadFile(openapi_path().string());
  ASSERT_TRUE(doc["openapi"]) << openapi_path();
  EXPECT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
  ASSERT_TRUE(doc["components"]["securitySchemes"]["bearer"]);
  ASSERT_TRUE(doc["components"]["schemas"]["Error"]);

  std::map<std::pair<std::string, std::string>, YAML::Node> documented;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      const auto method = op.first.as<std::string>();
      if (method == "parameters") continue;
      documented[{upper(method), path.first.as<std::string>()}] = op.second;
    }
  }
  std::set<std::pair<std::string, std::string>> registered;
  for (const auto& route : dispatcher_->router().routes()) {
    registered.insert({route.method, route.pattern});
    const auto it = documented.find({route.method, route.pattern});
    if (it == documented.end()) {
      ADD_FAILURE() << route.method << " " << route.pattern << " is not in docs/openapi.yaml";
      continue;
    }
    const YAML::Node& op = it->second;
    ASSERT_TRUE(op["x-required-role"]) << route.method << " " << route.pattern;
    const std::string role = op["x-required-role"].as<std::string>();
    EXPECT_EQ(role, route.min_role ? std::string(index::to_string(*route.min_role)) : "none")
        << route.method << " " << route.pattern;
    // Public operations say so (an empty security list); the others inherit bearer.
    const bool open = op["security"] && op["security"].IsSequence() && op["security"].size() == 0;
    EXPECT_EQ(open, !route.min_role) << route.method << " " << route.pattern;
    EXPECT_TRUE(op["responses"]) << route.method << " " << route.pattern;
    if (route.min_role) {
      EXPECT_TRUE(op["responses"]["401"]) << route.method << " " << route.pattern;
    }
  }
  for (const auto& [key, op] : documented) {
    EXPECT_TRUE(registered.count(key))
        << key.first << " " << key.second << " is documented but not registered";
  }
}

}  // namespace
}  // namespace gw::http
