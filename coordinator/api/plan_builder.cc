#include "coordinator/api/plan_builder.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <sstream>

#include "coordinator/common/check.h"
#include "coordinator/protocol/three_phase_commit.h"
#include "coordinator/protocol/two_phase_commit.h"
#include "participants/database/database_branch.h"
#include "participants/http/http_participant.h"
#include "sagas/saga.h"
#include "tcc/tcc.h"

namespace txc::api {
namespace {

// A database branch's calls are bounded by the transaction's timeout, but never above this: a
// statement that runs longer holds its locks for too long to be a good 2PC branch.
constexpr int64_t kDatabaseCallTimeoutMaxMs = 60'000;

// TCC runs on the two-phase machine with its own operations and words.
const protocol::TwoPhaseVocabulary& VocabularyOf(const std::string& protocol) {
  return protocol == "tcc" ? tcc::TccVocabulary() : protocol::TwoPhaseCommitVocabulary();
}

}  // namespace

PlanBuilder::PlanBuilder(RequestContext context, PlanResources resources)
    : context_(std::move(context)), resources_(std::move(resources)) {
  TXC_CHECK(resources_.http_pool != nullptr, "a plan builder has an HTTP pool");
}

Result<TransactionRequest> PlanBuilder::Parse(const std::string& body) const {
  return ParseTransactionRequest(body, context_);
}

std::string PlanBuilder::BeginBody(const TransactionRequest& request, int64_t created_unix_ms,
                                   const std::string& trace_id) {
  return "{\"created_unix_ms\":" + std::to_string(created_unix_ms) +
         (trace_id.empty() ? "" : ",\"trace_id\":\"" + trace_id + "\"") +
         ",\"spec\":" + request.canonical_json + "}";
}

Result<engine::TransactionPlan> PlanBuilder::Build(const TransactionRequest& request,
                                                   int64_t now_ms, int64_t now_unix_ms,
                                                   const std::string& trace_id) const {
  auto plan = Assemble(request, now_unix_ms, trace_id);
  if (!plan.ok()) return plan.status();
  if (request.protocol == "2pc" || request.protocol == "tcc") {
    plan->machine = std::make_unique<protocol::TwoPhaseCommit>(
        static_cast<uint32_t>(request.branches.size()), now_ms + request.timeout_ms,
        VocabularyOf(request.protocol));
  } else if (request.protocol == "3pc") {
    plan->machine = std::make_unique<protocol::ThreePhaseCommit>(
        static_cast<uint32_t>(request.branches.size()), now_ms + request.timeout_ms);
  } else if (request.protocol == "saga") {
    auto graph = SagaStepGraph(request);
    if (!graph.ok()) return graph.status();
    plan->machine =
        std::make_unique<sagas::Saga>(std::move(graph).value(), now_ms + request.timeout_ms);
  } else {
    return Status::InvalidArgument("protocol: '" + request.protocol +
                                   "' is not available in this version of txcoord");
  }
  return plan;
}

Result<engine::TransactionPlan> PlanBuilder::Rebuild(const std::string& gid,
                                                     const std::vector<log::LogRecord>& records,
                                                     int64_t now_ms, int64_t now_unix_ms) const {
  if (records.empty() || records.front().type != log::RecordType::kBegin) {
    return Status::Corruption("transaction " + gid + " has no BEGIN record");
  }
  int64_t created_unix_ms = 0;
  std::string trace_id;
  std::string spec;
  try {
    Poco::JSON::Parser parser;
    auto begin = parser.parse(records.front().body).extract<Poco::JSON::Object::Ptr>();
    created_unix_ms = begin->getValue<int64_t>("created_unix_ms");
    if (begin->has("trace_id")) trace_id = begin->getValue<std::string>("trace_id");
    std::ostringstream out;
    Poco::JSON::Stringifier::condense(begin->get("spec"), out);
    spec = out.str();
  } catch (const Poco::Exception& e) {
    return Status::Corruption("the BEGIN record of " + gid +
                              " is not readable: " + e.displayText());
  }
  // What was accepted once is run to its end: participants.allow may have changed since, but the
  // decision (or the presumed abort) must still reach every branch.
  RequestContext recovery_context = context_;
  recovery_context.check_url = nullptr;
  recovery_context.supported_protocols = RequestContext{}.supported_protocols;
  auto request = ParseTransactionRequest(spec, recovery_context);
  if (!request.ok()) {
    return Status(request.status().code(), "the BEGIN record of " + gid +
                                               " no longer parses: " + request.status().message());
  }
  if (request->gid != gid) {
    return Status::Corruption("the BEGIN record of " + gid + " names gid " + request->gid);
  }
  auto plan = Assemble(*request, created_unix_ms, trace_id);
  if (!plan.ok()) return plan.status();
  if (request->protocol == "saga") {
    auto graph = SagaStepGraph(*request);
    if (!graph.ok()) return graph.status();
    // The deadline counts from the submission, across restarts.
    const int64_t deadline_ms = now_ms + (created_unix_ms + request->timeout_ms - now_unix_ms);
    auto machine = sagas::Saga::Recover(std::move(graph).value(), deadline_ms, records);
    if (!machine.ok()) return machine.status();
    plan->machine = std::make_unique<sagas::Saga>(std::move(machine).value());
    return plan;
  }
  if (request->protocol == "3pc") {
    auto machine = protocol::ThreePhaseCommit::Recover(
        static_cast<uint32_t>(request->branches.size()), records);
    if (!machine.ok()) return machine.status();
    plan->machine = std::make_unique<protocol::ThreePhaseCommit>(std::move(machine).value());
    return plan;
  }
  auto machine = protocol::TwoPhaseCommit::Recover(static_cast<uint32_t>(request->branches.size()),
                                                   records, VocabularyOf(request->protocol));
  if (!machine.ok()) return machine.status();
  plan->machine = std::make_unique<protocol::TwoPhaseCommit>(std::move(machine).value());
  return plan;
}

Result<engine::TransactionPlan> PlanBuilder::Assemble(const TransactionRequest& request,
                                                      int64_t created_unix_ms,
                                                      const std::string& trace_id) const {
  engine::TransactionPlan plan;
  plan.gid = request.gid;
  plan.protocol = request.protocol;
  plan.retry = engine::RetryPolicy{request.retry_initial_ms, request.retry_max_ms};
  plan.begin_body = BeginBody(request, created_unix_ms, trace_id);
  plan.trace_id = trace_id;
  plan.fingerprint = request.fingerprint;
  plan.created_unix_ms = created_unix_ms;
  for (size_t i = 0; i < request.branches.size(); ++i) {
    const BranchRequest& branch = request.branches[i];
    plan.branch_names.push_back(branch.name);
    if (branch.is_database()) {
      auto resource = resources_.databases.find(branch.resource);
      if (resource == resources_.databases.end()) {
        return Status::InvalidArgument("branches[" + std::to_string(i) +
                                       "].resource: names no configured resource ('" +
                                       branch.resource + "')");
      }
      plan.participants.push_back(
          std::make_shared<participants::database::DatabaseBranch>(*resource->second, branch.sql));
      plan.branch_timeout_ms.push_back(std::min(request.timeout_ms, kDatabaseCallTimeoutMaxMs));
    } else {
      int64_t timeout_ms = 1;
      for (const auto& [op, call] : branch.calls)
        timeout_ms = std::max(timeout_ms, call.timeout_ms());
      plan.participants.push_back(
          std::make_shared<participants::http::HttpBranch>(branch.calls, *resources_.http_pool));
      plan.branch_timeout_ms.push_back(timeout_ms);
    }
  }
  return plan;
}

}  // namespace txc::api
