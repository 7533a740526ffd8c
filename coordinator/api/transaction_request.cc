#include "coordinator/api/transaction_request.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace txc::api {
namespace {

using participants::Op;
using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

struct Invalid {
  std::string field;
  std::string message;
};

[[noreturn]] void Fail(const std::string& field, const std::string& message) {
  throw Invalid{field, message};
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

std::string Json(const Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(value, out);
  return out.str();
}

Object::Ptr AsObject(const Var& value, const std::string& field) {
  if (value.type() != typeid(Object::Ptr)) Fail(field, "must be an object");
  return value.extract<Object::Ptr>();
}

Array::Ptr AsArray(const Var& value, const std::string& field) {
  if (value.type() != typeid(Array::Ptr)) Fail(field, "must be an array");
  return value.extract<Array::Ptr>();
}

std::string AsString(const Var& value, const std::string& field) {
  if (!value.isString()) Fail(field, "must be a string");
  return value.extract<std::string>();
}

int64_t AsInteger(const Var& value, const std::string& field, int64_t min, int64_t max) {
  if (!value.isInteger()) Fail(field, "must be an integer");
  int64_t v = 0;
  try {
    v = value.convert<int64_t>();
  } catch (const Poco::Exception&) {
    Fail(field, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  if (v < min || v > max) {
    Fail(field, "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                    std::to_string(v));
  }
  return v;
}

bool AsBool(const Var& value, const std::string& field) {
  if (!value.isBoolean()) Fail(field, "must be true or false");
  return value.extract<bool>();
}

void OnlyKeys(const Object::Ptr& object, const std::string& field,
              const std::set<std::string>& allowed) {
  for (const auto& [key, value] : *object) {
    if (!allowed.contains(key)) {
      std::string list;
      for (const auto& name : allowed) list += (list.empty() ? "" : ", ") + name;
      Fail(field.empty() ? key : field + "." + key,
           "is not a known field here (known: " + list + ")");
    }
  }
}

participants::http::HttpCall ParseCall(const Var& value, const std::string& field,
                                       const RequestContext& context) {
  auto object = AsObject(value, field);
  OnlyKeys(object, field, {"url", "method", "body", "headers", "timeout_ms"});
  participants::http::HttpCallSpec spec;
  if (!object->has("url")) Fail(field + ".url", "is required");
  spec.url = AsString(object->get("url"), field + ".url");
  if (object->has("method")) {
    spec.method = AsString(object->get("method"), field + ".method");
    static const std::set<std::string> kMethods = {"POST", "PUT", "PATCH", "DELETE", "GET"};
    if (!kMethods.contains(spec.method)) {
      Fail(field + ".method", "must be one of POST, PUT, PATCH, DELETE, GET");
    }
  }
  if (object->has("body")) spec.body = Json(object->get("body"));
  if (object->has("headers")) {
    auto headers = AsObject(object->get("headers"), field + ".headers");
    for (const auto& [name, header_value] : *headers) {
      spec.headers[name] = AsString(header_value, field + ".headers." + name);
    }
  }
  if (object->has("timeout_ms")) {
    spec.timeout_ms =
        AsInteger(object->get("timeout_ms"), field + ".timeout_ms",
                  participants::http::kCallTimeoutMsMin, participants::http::kCallTimeoutMsMax);
  }
  auto call = participants::http::HttpCall::Create(std::move(spec), field);
  if (!call.ok()) throw Invalid{"", call.status().message()};
  if (context.check_url) {
    Status allowed = context.check_url(call->url(), field + ".url");
    if (!allowed.ok()) throw Invalid{"", allowed.message()};
  }
  return std::move(call).value();
}

participants::database::StatementParam ParseParam(const Var& value, const std::string& field) {
  if (value.isEmpty()) return std::monostate{};
  if (value.isBoolean()) return value.extract<bool>();
  if (value.isInteger()) {
    try {
      return value.convert<int64_t>();
    } catch (const Poco::Exception&) {
      Fail(field, "is an integer out of the 64-bit range");
    }
  }
  if (value.isNumeric()) return value.convert<double>();
  if (value.isString()) return value.extract<std::string>();
  Fail(field, "must be a string, number, boolean or null");
}

// Which calls each protocol's HTTP branches have, and which are required.
std::vector<std::pair<std::string, Op>> CallsOf(const std::string& protocol) {
  if (protocol == "2pc")
    return {{"prepare", Op::kPrepare}, {"commit", Op::kCommit}, {"abort", Op::kAbort}};
  if (protocol == "3pc") {
    return {{"can_commit", Op::kCanCommit},
            {"pre_commit", Op::kPreCommit},
            {"do_commit", Op::kDoCommit},
            {"abort", Op::kAbort}};
  }
  if (protocol == "tcc")
    return {{"try", Op::kTry}, {"confirm", Op::kConfirm}, {"cancel", Op::kCancel}};
  return {{"action", Op::kAction}, {"compensate", Op::kCompensate}};
}

BranchRequest ParseBranch(const Var& value, const std::string& field, const std::string& protocol,
                          const RequestContext& context) {
  auto object = AsObject(value, field);
  BranchRequest branch;
  if (!object->has("name")) Fail(field + ".name", "is required");
  branch.name = AsString(object->get("name"), field + ".name");
  if (!IsValidBranchName(branch.name)) {
    Fail(field + ".name", "must be 1 to 64 of A-Z a-z 0-9 . _ -");
  }
  const auto calls = CallsOf(protocol);
  const bool database = object->has("resource") || object->has("sql");
  if (database) {
    if (protocol != "2pc") {
      Fail(field + ".resource", protocol == "3pc"
                                    ? "database branches take part in 2pc only in this version of "
                                      "txcoord (3pc database branches are not available yet)"
                                    : "database branches take part in 2pc only");
    }
    OnlyKeys(object, field, {"name", "resource", "sql"});
    if (!object->has("resource")) Fail(field + ".resource", "is required with sql");
    branch.resource = AsString(object->get("resource"), field + ".resource");
    if (!context.resource_kind || !context.resource_kind(branch.resource)) {
      Fail(field + ".resource", "names no configured resource ('" + branch.resource + "')");
    }
    if (!object->has("sql")) Fail(field + ".sql", "is required with resource");
    auto statements = AsArray(object->get("sql"), field + ".sql");
    if (statements->size() == 0) Fail(field + ".sql", "must hold at least one statement");
    if (statements->size() > context.limits.max_statements) {
      Fail(field + ".sql",
           "holds more than " + std::to_string(context.limits.max_statements) + " statements");
    }
    for (size_t i = 0; i < statements->size(); ++i) {
      const std::string sfield = field + ".sql[" + std::to_string(i) + "]";
      auto statement = AsObject(statements->get(static_cast<unsigned>(i)), sfield);
      OnlyKeys(statement, sfield, {"text", "params"});
      participants::database::Statement s;
      if (!statement->has("text")) Fail(sfield + ".text", "is required");
      s.text = AsString(statement->get("text"), sfield + ".text");
      if (s.text.empty()) Fail(sfield + ".text", "must not be empty");
      if (statement->has("params")) {
        auto params = AsArray(statement->get("params"), sfield + ".params");
        for (size_t p = 0; p < params->size(); ++p) {
          s.params.push_back(ParseParam(params->get(static_cast<unsigned>(p)),
                                        sfield + ".params[" + std::to_string(p) + "]"));
        }
      }
      Status allowed = participants::database::CheckBranchStatement(s, i);
      if (!allowed.ok()) Fail(sfield + ".text", allowed.message());
      branch.sql.push_back(std::move(s));
    }
    return branch;
  }
  std::set<std::string> keys = {"name"};
  for (const auto& [key, op] : calls) keys.insert(key);
  if (protocol == "saga") keys.insert("after");
  OnlyKeys(object, field, keys);
  for (const auto& [key, op] : calls) {
    if (!object->has(key)) Fail(field + "." + key, "is required for a " + protocol + " branch");
    branch.calls.emplace(op, ParseCall(object->get(key), field + "." + key, context));
  }
  if (object->has("after")) {
    auto after = AsArray(object->get("after"), field + ".after");
    std::vector<std::string> names;
    for (size_t i = 0; i < after->size(); ++i) {
      names.push_back(AsString(after->get(static_cast<unsigned>(i)),
                               field + ".after[" + std::to_string(i) + "]"));
    }
    branch.after = std::move(names);
  }
  return branch;
}

}  // namespace

uint64_t Fingerprint(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

Result<sagas::SagaGraph> SagaStepGraph(const TransactionRequest& request) {
  std::vector<std::string> names;
  std::vector<std::optional<std::vector<std::string>>> after;
  for (const auto& branch : request.branches) {
    names.push_back(branch.name);
    after.push_back(branch.after);
  }
  return sagas::SagaGraph::Build(names, after);
}

bool IsValidGid(const std::string& gid) { return IsName(gid, 56); }
bool IsValidBranchName(const std::string& name) { return IsName(name, 64); }

Result<TransactionRequest> ParseTransactionRequest(const std::string& body,
                                                   const RequestContext& context) {
  Var parsed;
  try {
    Poco::JSON::Parser parser;
    parsed = parser.parse(body);
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("body: not valid JSON: " + e.displayText());
  }
  try {
    auto object = AsObject(parsed, "body");
    OnlyKeys(object, "", {"gid", "protocol", "timeout_ms", "wait", "retry", "branches"});
    TransactionRequest request;
    if (object->has("gid")) {
      request.gid = AsString(object->get("gid"), "gid");
      if (!IsValidGid(request.gid)) Fail("gid", "must be 1 to 56 of A-Z a-z 0-9 . _ -");
    } else {
      request.gid = context.generate_gid ? context.generate_gid() : "";
      request.gid_generated = true;
      object->set("gid", request.gid);
    }
    if (!object->has("protocol")) Fail("protocol", "is required (saga, tcc, 2pc or 3pc)");
    request.protocol = AsString(object->get("protocol"), "protocol");
    static const std::set<std::string> kProtocols = {"saga", "tcc", "2pc", "3pc"};
    if (!kProtocols.contains(request.protocol)) {
      Fail("protocol", "must be saga, tcc, 2pc or 3pc, got '" + request.protocol + "'");
    }
    if (std::find(context.supported_protocols.begin(), context.supported_protocols.end(),
                  request.protocol) == context.supported_protocols.end()) {
      Fail("protocol", "'" + request.protocol + "' is not available in this version of txcoord");
    }
    request.timeout_ms =
        object->has("timeout_ms")
            ? AsInteger(object->get("timeout_ms"), "timeout_ms", 1, context.limits.max_timeout_ms)
            : context.limits.default_timeout_ms;
    if (object->has("wait")) request.wait = AsBool(object->get("wait"), "wait");
    if (object->has("retry")) {
      auto retry = AsObject(object->get("retry"), "retry");
      OnlyKeys(retry, "retry", {"initial_ms", "max_ms"});
      if (retry->has("initial_ms")) {
        request.retry_initial_ms =
            AsInteger(retry->get("initial_ms"), "retry.initial_ms", 1, context.limits.max_retry_ms);
      }
      if (retry->has("max_ms")) {
        request.retry_max_ms =
            AsInteger(retry->get("max_ms"), "retry.max_ms", 1, context.limits.max_retry_ms);
      }
      if (request.retry_max_ms < request.retry_initial_ms) {
        Fail("retry.max_ms", "must not be below retry.initial_ms");
      }
    }
    if (!object->has("branches")) Fail("branches", "is required");
    auto branches = AsArray(object->get("branches"), "branches");
    if (branches->size() == 0) Fail("branches", "must hold at least one branch");
    if (branches->size() > context.limits.max_branches) {
      Fail("branches", "holds " + std::to_string(branches->size()) + " branches; at most " +
                           std::to_string(context.limits.max_branches) + " (limits.max_branches)");
    }
    std::set<std::string> names;
    for (size_t i = 0; i < branches->size(); ++i) {
      const std::string field = "branches[" + std::to_string(i) + "]";
      BranchRequest branch =
          ParseBranch(branches->get(static_cast<unsigned>(i)), field, request.protocol, context);
      if (!names.insert(branch.name).second) {
        Fail(field + ".name", "'" + branch.name + "' is used by another branch");
      }
      request.branches.push_back(std::move(branch));
    }
    if (request.protocol == "saga") {
      // Unknown names, a step waiting for itself, repeats and cycles, each named by its field.
      auto graph = SagaStepGraph(request);
      if (!graph.ok()) throw Invalid{"", graph.status().message()};
    }
    object->remove("wait");  // the same transaction, whether waited for or not
    std::ostringstream canonical;
    object->stringify(canonical);
    request.canonical_json = canonical.str();
    request.fingerprint = Fingerprint(request.canonical_json);
    return request;
  } catch (const Invalid& invalid) {
    // Errors from the call and URL checks come with their field already in the message.
    return Status::InvalidArgument(invalid.field.empty() ? invalid.message
                                                         : invalid.field + ": " + invalid.message);
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("body: " + e.displayText());
  }
}

}  // namespace txc::api
