#include "tools/txctl/document_table.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <cstddef>
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
  *table = std::move(out);
  return true;
}

}  // namespace txc::txctl
