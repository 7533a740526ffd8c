// What a business handler's logic decides inside its database transaction, and how that and the
// barrier's verdict become the HTTP answer the coordinator reads (API.md, participant contract):
//
//   verdict run, logic done          -> commit, 200 {"verdict": "run", ...the logic's fields}
//   verdict run, logic refused       -> roll back, 409 {"error": {"code": ..., "message": ...}}
//   verdict duplicate                -> commit, 200 {"verdict": "duplicate"}: done before
//   verdict empty_compensation       -> commit, 200 {"verdict": "empty_compensation"}: nothing to
//                                       undo, and the late action will be refused
//   verdict refused_after_cancel     -> commit, 409 refused_after_cancel
#pragma once

#include <Poco/JSON/Object.h>

#include <optional>
#include <string>

#include "coordinator/server/http_message.h"
#include "tcc/barrier/barrier.h"

namespace txc::shop {

class BusinessOutcome {
 public:
  // The work is done; `fields` describe the result (the account's new balance, ...).
  static BusinessOutcome Done(Poco::JSON::Object::Ptr fields);
  // A business rule says no (insufficient funds, out of stock): nothing may stay changed.
  static BusinessOutcome Refused(std::string code, std::string message);

  bool refused() const { return refused_; }
  server::Response ToResponse() const;

 private:
  bool refused_ = false;
  Poco::JSON::Object::Ptr fields_;
  std::string code_;
  std::string message_;
};

// The answer for a verdict that does not run the business logic; nullopt for kRun.
std::optional<server::Response> VerdictResponse(barrier::Verdict verdict,
                                                const barrier::BarrierKey& key);

// 503 database_unavailable: the database could not do the work now, and nothing was done; the
// coordinator retries.
server::Response DatabaseUnavailableResponse(const std::string& message);

// The answer when entering the barrier failed: nothing happened, so the call may be retried. 503
// for a broken connection, a deadlock or a timeout (Unavailable, Aborted), 500 otherwise.
server::Response BarrierErrorResponse(const Status& status);

}  // namespace txc::shop
