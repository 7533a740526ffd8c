// TransactionRequest: the body of `POST /v1/transactions` (API.md "Submit"), parsed and checked.
// Every error names the field it is about (`branches[1].prepare.url: ...`), and nothing is logged
// or called for a request that fails here.
//
// The same parser reads a transaction back from its BEGIN record after a restart, so what was
// accepted once is accepted again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/common/status.h"
#include "participants/database/statement.h"
#include "participants/http/http_call.h"
#include "participants/participant.h"
#include "sagas/saga_graph.h"

namespace txc::api {

struct RequestLimits {
  size_t max_branches = 64;
  size_t max_statements = 100;  // per database branch
  int64_t max_timeout_ms = 86'400'000;
  int64_t default_timeout_ms = 30'000;
  int64_t max_retry_ms = 3'600'000;
};

struct BranchRequest {
  std::string name;
  std::map<participants::Op, participants::http::HttpCall> calls;  // HTTP branches
  std::string resource;                                            // database branches
  std::vector<participants::database::Statement> sql;
  std::optional<std::vector<std::string>> after;  // sagas
  bool is_database() const { return !resource.empty(); }
};

struct TransactionRequest {
  std::string gid;
  bool gid_generated = false;
  std::string protocol;  // saga | tcc | 2pc | 3pc
  int64_t timeout_ms = 30'000;
  bool wait = false;
  int64_t retry_initial_ms = 100;
  int64_t retry_max_ms = 30'000;
  std::vector<BranchRequest> branches;
  // The request in canonical form (sorted keys, no `wait`): what BEGIN records, and what an
  // identical resubmission must match.
  std::string canonical_json;
  uint64_t fingerprint = 0;
};

// What the parser checks references against.
struct RequestContext {
  RequestLimits limits;
  // URL check for HTTP calls (participants.allow): OK, or InvalidArgument naming `field`.
  std::function<Status(const participants::http::HttpUrl& url, std::string_view field)> check_url;
  // Whether a database resource of this name is configured, and its kind ("postgres"/"mysql").
  std::function<std::optional<std::string>(const std::string& name)> resource_kind;
  // Protocols this build runs; others are refused with a clear message.
  std::vector<std::string> supported_protocols = {"2pc", "saga", "tcc", "3pc"};
  // Generates a gid when the request has none.
  std::function<std::string()> generate_gid;
};

Result<TransactionRequest> ParseTransactionRequest(const std::string& body,
                                                   const RequestContext& context);

// The order of a saga's steps (their `after` lists); InvalidArgument naming the field.
Result<sagas::SagaGraph> SagaStepGraph(const TransactionRequest& request);

// 64-bit FNV-1a: stable across builds, unlike std::hash, because fingerprints are stored.
uint64_t Fingerprint(const std::string& text);

// gid: 1–56 of [A-Za-z0-9._-] (it must fit a MySQL XID); branch names 1–64 of the same.
bool IsValidGid(const std::string& gid);
bool IsValidBranchName(const std::string& name);

}  // namespace txc::api
