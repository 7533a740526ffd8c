#include "coordinator/log/decision_log.h"

namespace txc::log {

const char* RecordTypeName(RecordType type) {
  switch (type) {
    case RecordType::kBegin:
      return "begin";
    case RecordType::kDecision:
      return "decision";
    case RecordType::kProgress:
      return "progress";
    case RecordType::kOperator:
      return "operator";
    case RecordType::kEnd:
      return "end";
  }
  return "unknown";
}

bool IsValidRecordType(uint8_t raw) {
  return raw >= static_cast<uint8_t>(RecordType::kBegin) &&
         raw <= static_cast<uint8_t>(RecordType::kEnd);
}

}  // namespace txc::log
