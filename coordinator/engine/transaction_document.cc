#include "coordinator/engine/transaction_document.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <ctime>
#include <sstream>

namespace txc::engine {

bool TransactionDocument::NeedsOperator() const {
  return std::any_of(branches.begin(), branches.end(),
                     [](const BranchDocument& b) { return b.needs_operator; });
}

bool TransactionDocument::Stuck(int64_t now_unix_ms, int64_t stuck_after_ms) const {
  if (NeedsOperator()) return true;
  return !final() && now_unix_ms - created_unix_ms >= stuck_after_ms;
}

std::string FormatUtcMillis(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  std::snprintf(out, sizeof(out), "%.*s.%03dZ", static_cast<int>(n), text,
                static_cast<int>(unix_ms % 1000));
  return out;
}

namespace {

Poco::JSON::Object::Ptr ActionToObject(const OperatorAction& a, bool for_summary) {
  Poco::JSON::Object::Ptr object = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  if (for_summary) {
    object->set("at_unix_ms", a.at_unix_ms);
  } else {
    object->set("at", FormatUtcMillis(a.at_unix_ms));
  }
  object->set("action", a.action);
  object->set("by", a.by);
  if (!a.branch.empty()) object->set("branch", a.branch);
  if (!a.outcome.empty()) object->set("outcome", a.outcome);
  object->set("reason", a.reason);
  return object;
}

OperatorAction ActionFromObject(const Poco::JSON::Object::Ptr& object) {
  OperatorAction a;
  a.at_unix_ms = object->getValue<int64_t>("at_unix_ms");
  a.action = object->getValue<std::string>("action");
  a.by = object->getValue<std::string>("by");
  if (object->has("branch")) a.branch = object->getValue<std::string>("branch");
  if (object->has("outcome")) a.outcome = object->getValue<std::string>("outcome");
  a.reason = object->getValue<std::string>("reason");
  return a;
}

Poco::JSON::Object::Ptr ToObject(const TransactionDocument& d, bool for_summary,
                                 int64_t now_unix_ms, int64_t stuck_after_ms) {
  Poco::JSON::Object::Ptr object = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  object->set("gid", d.gid);
  object->set("protocol", d.protocol);
  object->set("state", d.state);
  object->set("outcome", d.outcome ? Poco::Dynamic::Var(*d.outcome) : Poco::Dynamic::Var());
  if (for_summary) {
    object->set("created_unix_ms", d.created_unix_ms);
    object->set("updated_unix_ms", d.updated_unix_ms);
    object->set("fingerprint", std::to_string(d.fingerprint));
  } else {
    object->set("created_at", FormatUtcMillis(d.created_unix_ms));
    object->set("updated_at", FormatUtcMillis(d.updated_unix_ms));
    object->set("stuck", d.Stuck(now_unix_ms, stuck_after_ms));
  }
  if (!d.decision_reason.empty()) object->set("reason", d.decision_reason);
  Poco::JSON::Array::Ptr branches = new Poco::JSON::Array();
  for (const auto& b : d.branches) {
    Poco::JSON::Object::Ptr branch = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    branch->set("name", b.name);
    branch->set("state", b.state);
    branch->set("attempts", b.attempts);
    branch->set("last_error",
                b.last_error.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(b.last_error));
    if (b.needs_operator || for_summary) branch->set("needs_operator", b.needs_operator);
    branches->add(branch);
  }
  object->set("branches", branches);
  if (!d.history.empty()) {
    Poco::JSON::Array::Ptr history = new Poco::JSON::Array();
    for (const auto& a : d.history) history->add(ActionToObject(a, for_summary));
    object->set("history", history);
  }
  return object;
}

std::string Stringify(const Poco::JSON::Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

}  // namespace

std::string DocumentToJson(const TransactionDocument& document, int64_t now_unix_ms,
                           int64_t stuck_after_ms) {
  return Stringify(ToObject(document, false, now_unix_ms, stuck_after_ms));
}

std::string EncodeSummary(const TransactionDocument& document) {
  return Stringify(ToObject(document, true, 0, 0));
}

Result<TransactionDocument> DecodeSummary(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    TransactionDocument d;
    d.gid = object->getValue<std::string>("gid");
    d.protocol = object->getValue<std::string>("protocol");
    d.state = object->getValue<std::string>("state");
    if (!object->isNull("outcome")) d.outcome = object->getValue<std::string>("outcome");
    d.created_unix_ms = object->getValue<int64_t>("created_unix_ms");
    d.updated_unix_ms = object->getValue<int64_t>("updated_unix_ms");
    d.fingerprint = std::stoull(object->getValue<std::string>("fingerprint"));
    if (object->has("reason")) d.decision_reason = object->getValue<std::string>("reason");
    auto branches = object->getArray("branches");
    for (size_t i = 0; branches && i < branches->size(); ++i) {
      auto b = branches->getObject(static_cast<unsigned>(i));
      BranchDocument branch;
      branch.name = b->getValue<std::string>("name");
      branch.state = b->getValue<std::string>("state");
      branch.attempts = b->getValue<uint32_t>("attempts");
      if (!b->isNull("last_error")) branch.last_error = b->getValue<std::string>("last_error");
      branch.needs_operator = b->getValue<bool>("needs_operator");
      d.branches.push_back(std::move(branch));
    }
    if (object->has("history")) {
      auto history = object->getArray("history");
      for (size_t i = 0; history && i < history->size(); ++i) {
        d.history.push_back(ActionFromObject(history->getObject(static_cast<unsigned>(i))));
      }
    }
    return d;
  } catch (const Poco::Exception& e) {
    return Status::Corruption("transaction summary is not readable: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("transaction summary is not readable: ") + e.what());
  }
}

std::string EncodeOperatorAction(const OperatorAction& action) {
  return Stringify(ActionToObject(action, true));
}

Result<OperatorAction> DecodeOperatorAction(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    return ActionFromObject(parser.parse(body).extract<Poco::JSON::Object::Ptr>());
  } catch (const Poco::Exception& e) {
    return Status::Corruption("operator record is not readable: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("operator record is not readable: ") + e.what());
  }
}

}  // namespace txc::engine
