#include "tools/txctl/document_table.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <ctime>
#include <exception>
#include <sstream>
#include <typeinfo>
#include <vector>

namespace txc::txctl {
namespace {

using Poco::JSON::Object;

constexpr const char* kMissing = "-";

// One line per value: a last_error with a newline (a database message, a reply body) would
// otherwise break the row apart.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

// The member as text: strings as they are, numbers and booleans as JSON writes them, null or
// absent as "-", anything else (an object, an array) as its JSON.
std::string Field(const Object::Ptr& object, const std::string& key) {
  if (!object || !object->has(key) || object->isNull(key)) return kMissing;
  const Poco::Dynamic::Var value = object->get(key);
  try {
    if (value.type() == typeid(Object::Ptr) || value.type() == typeid(Poco::JSON::Array::Ptr)) {
      std::ostringstream out;
      Poco::JSON::Stringifier::condense(value, out);
      return OneLine(out.str());
    }
    std::string text = OneLine(value.convert<std::string>());
    return text.empty() ? "\"\"" : text;
  } catch (const Poco::Exception&) {
    return "?";
  }
}

// Left-aligned columns two spaces apart; the last column is not padded, so that no line ends in
// spaces and a long last_error is never cut.
std::string Columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(widths[i] - row[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace

bool FormatDocumentTable(const std::string& json, std::string* table, std::string* error) {
  Object::Ptr document;
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(json);
    if (parsed.type() == typeid(Object::Ptr)) document = parsed.extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    *error = "the answer is not JSON: " + e.displayText();
    return false;
  }
  if (!document) {
    *error = "the answer is not a JSON object";
    return false;
  }

  std::vector<std::vector<std::string>> header;
  for (const char* key :
       {"gid", "protocol", "state", "outcome", "stuck", "created_at", "updated_at"}) {
    header.push_back({std::string(key) + ":", Field(document, key)});
  }
  // The reason for the decision, when the coordinator recorded one (a no vote, the timeout...).
  if (document->has("reason") && !document->isNull("reason")) {
    header.push_back({"reason:", Field(document, "reason")});
  }
  std::string out = Columns(header);

  std::vector<std::vector<std::string>> rows = {
      {"NAME", "STATE", "ATTEMPTS", "NEEDS_OPERATOR", "LAST_ERROR"}};
  Poco::JSON::Array::Ptr branches;
  if (document->has("branches") && !document->isNull("branches")) {
    try {
      branches = document->getArray("branches");
    } catch (const std::exception&) {
      branches = nullptr;  // not an array: shown as having no branches
    }
  }
  for (unsigned i = 0; branches && i < branches->size(); ++i) {
    const Object::Ptr branch = branches->getObject(i);
    // The coordinator leaves needs_operator out while it is false.
    const std::string needs_operator =
        branch && branch->has("needs_operator") ? Field(branch, "needs_operator") : "false";
    rows.push_back({Field(branch, "name"), Field(branch, "state"), Field(branch, "attempts"),
                    needs_operator, Field(branch, "last_error")});
  }
  out += "\n";
  out += Columns(rows);

  // What operators did to it (abort, resolve), with who and why, when anything.
  Poco::JSON::Array::Ptr history;
  if (document->has("history") && !document->isNull("history")) {
    try {
      history = document->getArray("history");
    } catch (const std::exception&) {
      history = nullptr;
    }
  }
  if (history && history->size() > 0) {
    std::vector<std::vector<std::string>> actions = {
        {"AT", "ACTION", "BY", "BRANCH", "OUTCOME", "REASON"}};
    for (unsigned i = 0; i < history->size(); ++i) {
      Object::Ptr action;
      try {
        action = history->getObject(i);
      } catch (const std::exception&) {
        action = nullptr;
      }
      actions.push_back({Field(action, "at"), Field(action, "action"), Field(action, "by"),
                         Field(action, "branch"), Field(action, "outcome"),
                         Field(action, "reason")});
    }
    out += "\n";
    out += Columns(actions);
  }
  *table = std::move(out);
  return true;
}

int64_t ParseUtcMillis(const std::string& text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &year, &month, &day, &hour,
                  &minute, &second, &millis, &consumed) != 7 ||
      static_cast<size_t>(consumed) != text.size()) {
    return -1;
  }
  std::tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  utc.tm_sec = second;
  const std::time_t seconds = timegm(&utc);
  if (seconds == static_cast<std::time_t>(-1)) return -1;
  return static_cast<int64_t>(seconds) * 1000 + millis;
}

std::string FormatAge(int64_t age_ms) {
  if (age_ms < 0) return kMissing;
  const int64_t s = age_ms / 1000;
  // Two units at most: an operator wants the size of it, not the exact figure.
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  return std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
}

std::string FormatTransactionList(const Poco::JSON::Array::Ptr& documents, int64_t now_unix_ms) {
  std::vector<std::vector<std::string>> rows = {
      {"GID", "PROTOCOL", "STATE", "OUTCOME", "STUCK", "AGE", "BRANCHES"}};
  for (unsigned i = 0; documents && i < documents->size(); ++i) {
    Object::Ptr document;
    try {
      document = documents->getObject(i);
    } catch (const std::exception&) {
      document = nullptr;  // not an object: a row of "-"
    }
    const std::string created = Field(document, "created_at");
    const int64_t created_ms = ParseUtcMillis(created);
    const std::string age = created_ms < 0 ? kMissing : FormatAge(now_unix_ms - created_ms);

    // Branch states counted in the order they first appear.
    std::vector<std::pair<std::string, int>> states;
    int needs_operator = 0;
    Poco::JSON::Array::Ptr branches;
    if (document && document->has("branches") && !document->isNull("branches")) {
      try {
        branches = document->getArray("branches");
      } catch (const std::exception&) {
        branches = nullptr;
      }
    }
    for (unsigned b = 0; branches && b < branches->size(); ++b) {
      Object::Ptr branch;
      try {
        branch = branches->getObject(b);
      } catch (const std::exception&) {
        branch = nullptr;
      }
      const std::string state = Field(branch, "state");
      auto it = std::find_if(states.begin(), states.end(),
                             [&state](const auto& entry) { return entry.first == state; });
      if (it == states.end()) {
        states.emplace_back(state, 1);
      } else {
        ++it->second;
      }
      if (Field(branch, "needs_operator") == "true") ++needs_operator;
    }
    std::string summary;
    for (const auto& [state, count] : states) {
      summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + state;
    }
    if (needs_operator > 0) {
      summary += "; " + std::to_string(needs_operator) + " need" +
                 (needs_operator == 1 ? "s" : "") + " an operator";
    }
    rows.push_back({Field(document, "gid"), Field(document, "protocol"), Field(document, "state"),
                    Field(document, "outcome"), Field(document, "stuck"), age,
                    summary.empty() ? kMissing : summary});
  }
  return Columns(rows);
}

}  // namespace txc::txctl
