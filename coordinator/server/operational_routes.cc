#include "coordinator/server/operational_routes.h"

#include <memory>

#include "coordinator/common/check.h"

namespace txc::server {

void AddOperationalRoutes(Router& router, OperationalContext context) {
  TXC_CHECK(context.log != nullptr, "operational routes need the decision log");
  TXC_CHECK(context.readiness != nullptr, "operational routes need readiness");
  TXC_CHECK(context.metrics != nullptr, "operational routes need metrics");
  auto shared = std::make_shared<const OperationalContext>(std::move(context));

  router.Add("GET", "/healthz", [](const Request&) {
    Poco::JSON::Object::Ptr body = NewJsonObject();
    body->set("status", "ok");
    return JsonResponse(200, *body);
  });

  router.Add("GET", "/readyz", [shared](const Request&) {
    Status ready = shared->readiness->Check();
    if (!ready.ok()) {
      Response response = ErrorResponse(503, "not_ready", ready.message());
      response.headers.emplace_back("Retry-After", "1");
      return response;
    }
    Poco::JSON::Object::Ptr body = NewJsonObject();
    body->set("status", "ready");
    return JsonResponse(200, *body);
  });

  router.Add("GET", "/v1/info", [shared](const Request&) {
    Poco::JSON::Object::Ptr log = NewJsonObject();
    log->set("kind", shared->log->Kind());
    Poco::JSON::Object::Ptr body = NewJsonObject();
    body->set("version", std::string(TXC_VERSION));
    body->set("node_id", shared->node_id);
    body->set("log", log);
    return JsonResponse(200, *body);
  });

  router.Add("GET", "/metrics", [shared](const Request&) {
    if (shared->before_scrape) shared->before_scrape();
    Response response;
    response.status = 200;
    response.content_type = kPrometheusContentType;
    response.body = shared->metrics->Serialize();
    return response;
  });
}

}  // namespace txc::server
