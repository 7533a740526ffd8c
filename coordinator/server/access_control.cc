#include "coordinator/server/access_control.h"

#include <Poco/SHA2Engine.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "coordinator/common/check.h"

namespace txc::server {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    const size_t begin = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    if (i > begin) fields.push_back(line.substr(begin, i - begin));
  }
  return fields;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ||
         c == '@';
}

// Printable ASCII without blanks: what an HTTP header value carries unchanged.
bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f; }

// Equal digests, in a time that does not depend on where they differ.
bool DigestsEqual(const TokenDigest& a, const TokenDigest& b) {
  uint8_t difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<uint8_t>(a[i] ^ b[i]);
  return difference == 0;
}

std::string LinePrefix(size_t line) { return "line " + std::to_string(line) + ": "; }

// The token of an `Authorization: Bearer <token>` value (scheme in any case, RFC 7235 2.1), or
// nullopt when the value has another form.
std::optional<std::string_view> BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !IsBlank(value[kScheme.size()])) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return std::nullopt;
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && IsBlank(token.front())) token.remove_prefix(1);
  while (!token.empty() && IsBlank(token.back())) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kOperate:
      return "operate";
  }
  return "unknown";
}

TokenDigest DigestToken(std::string_view token) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(token.data(), token.size());
  const Poco::DigestEngine::Digest& digest = engine.digest();
  TXC_CHECK(digest.size() == TokenDigest().size(), "SHA-256 digests are 32 bytes");
  TokenDigest out{};
  std::copy(digest.begin(), digest.end(), out.begin());
  return out;
}

Result<TokenTable> TokenTable::Parse(std::string_view text) {
  TokenTable table;
  std::map<std::string, size_t> name_lines;  // name → the line that gave it
  std::vector<size_t> token_lines;           // parallel to table.tokens_
  size_t line_number = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    const std::vector<std::string_view> fields = SplitFields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    // Field values are never quoted back: a line in the wrong order may hold the token anywhere.
    const std::string where = LinePrefix(line_number);
    if (fields.size() != 3) {
      return Status::InvalidArgument(where +
                                     "expected `<role> <name> <token>` separated by "
                                     "blanks, got " +
                                     std::to_string(fields.size()) + " fields");
    }
    ApiToken entry;
    if (fields[0] == "read") {
      entry.role = Role::kRead;
    } else if (fields[0] == "operate") {
      entry.role = Role::kOperate;
    } else {
      // A field shorter than the shortest token cannot be one, so it is safe to show.
      const std::string shown =
          fields[0].size() < kTokenLengthMin
              ? " \"" + std::string(fields[0]) + "\""
              : " (a " + std::to_string(fields[0].size()) + "-character first field, not shown)";
      return Status::InvalidArgument(where + "unknown role" + shown +
                                     "; the first field is the role, read or operate");
    }
    const std::string_view name = fields[1];
    bool name_ok = !name.empty() && name.size() <= kTokenNameLengthMax;
    for (char c : name) name_ok = name_ok && IsNameChar(c);
    if (!name_ok) {
      return Status::InvalidArgument(where +
                                     "the name (second field) must be 1-64 characters of "
                                     "[A-Za-z0-9._@-]");
    }
    const std::string_view token = fields[2];
    if (token.size() < kTokenLengthMin) {
      return Status::InvalidArgument(where + "the token (third field) has " +
                                     std::to_string(token.size()) + " characters; at least " +
                                     std::to_string(kTokenLengthMin) +
                                     " are needed (e.g. openssl rand -hex 32)");
    }
    if (token.size() > kTokenLengthMax) {
      return Status::InvalidArgument(where + "the token (third field) has more than " +
                                     std::to_string(kTokenLengthMax) + " characters");
    }
    for (char c : token) {
      if (!IsTokenChar(c)) {
        return Status::InvalidArgument(
            where + "the token (third field) holds a character outside printable ASCII");
      }
    }
    entry.name = std::string(name);
    entry.digest = DigestToken(token);
    if (auto [it, added] = name_lines.emplace(entry.name, line_number); !added) {
      return Status::InvalidArgument(where + "the name is already given on line " +
                                     std::to_string(it->second) + "; names must be unique");
    }
    for (size_t i = 0; i < table.tokens_.size(); ++i) {
      if (DigestsEqual(table.tokens_[i].digest, entry.digest)) {
        return Status::InvalidArgument(where + "the same token as on line " +
                                       std::to_string(token_lines[i]) +
                                       "; every name needs a token of its own");
      }
    }
    table.tokens_.push_back(std::move(entry));
    token_lines.push_back(line_number);
  }
  if (table.tokens_.empty()) {
    return Status::InvalidArgument(
        "holds no token: access control on without a token would refuse every request");
  }
  return table;
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::InvalidArgument(path + ": cannot be opened: " + std::strerror(errno));
  }
  // The checks use the opened file itself, so a file swapped in between cannot slip past them.
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return Status::InvalidArgument(path + ": cannot be examined: " + std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": is not a regular file");
  }
  if ((info.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return Status::InvalidArgument(path + ": has mode " + mode +
                                   ", so others than its owner may read or change the tokens; "
                                   "make it readable by its owner only (chmod 600 " +
                                   path + ")");
  }
  if (static_cast<uint64_t>(info.st_size) > kTokensFileBytesMax) {
    ::close(fd);
    return Status::InvalidArgument(path + ": is larger than " +
                                   std::to_string(kTokensFileBytesMax) + " bytes");
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
      if (text.size() > kTokensFileBytesMax) {
        ::close(fd);
        return Status::InvalidArgument(path + ": is larger than " +
                                       std::to_string(kTokensFileBytesMax) + " bytes");
      }
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int error = errno;
      ::close(fd);
      return Status::InvalidArgument(path + ": cannot be read: " + std::strerror(error));
    }
  }
  ::close(fd);
  Result<TokenTable> table = Parse(text);
  if (!table.ok()) return Status::InvalidArgument(path + " " + table.status().message());
  return table;
}

const ApiToken* TokenTable::Find(std::string_view token) const {
  const TokenDigest digest = DigestToken(token);
  const ApiToken* found = nullptr;
  for (const ApiToken& entry : tokens_) {
    const bool equal = DigestsEqual(entry.digest, digest);
    if (equal && found == nullptr) found = &entry;
  }
  return found;
}

AccessControl::AccessControl(TokenTable tokens, AccessControlOptions options)
    : tokens_(std::move(tokens)), options_(std::move(options)) {
  TXC_CHECK(!tokens_.tokens().empty(), "access control needs at least one token");
}

bool AccessControl::IsOpenPath(const std::string& path) const {
  for (const std::string& open : options_.open_paths) {
    if (path == open) return true;
  }
  for (const std::string& prefix : options_.open_prefixes) {
    if (path.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Response AccessControl::Refuse(int status, const std::string& reason, const std::string& message,
                               const std::string& challenge) const {
  if (options_.count_rejection) options_.count_rejection(reason);
  Response response = ErrorResponse(status, reason, message);
  if (!challenge.empty()) response.headers.emplace_back("WWW-Authenticate", challenge);
  return response;
}

std::optional<Response> AccessControl::Check(Request& request) const {
  std::optional<std::string> authorization;
  if (auto it = request.headers.find("authorization"); it != request.headers.end()) {
    authorization = std::move(it->second);
    request.headers.erase(it);
  }
  request.principal.clear();
  if (IsOpenPath(request.path)) return std::nullopt;

  // RFC 6750 3: a request without credentials gets the bare challenge, a bad token one with
  // error="invalid_token".
  if (!authorization.has_value()) {
    return Refuse(401, "unauthorized",
                  "this request needs an API token: send the header Authorization: Bearer <token>",
                  "Bearer realm=\"txcoord\"");
  }
  const std::optional<std::string_view> token = BearerToken(*authorization);
  if (!token.has_value()) {
    return Refuse(401, "unauthorized",
                  "the Authorization header must be `Bearer <token>` (its value is not shown)",
                  "Bearer realm=\"txcoord\", error=\"invalid_request\"");
  }
  const ApiToken* entry = tokens_.Find(*token);
  if (entry == nullptr) {
    return Refuse(401, "unauthorized", "the API token is not known (it is not shown)",
                  "Bearer realm=\"txcoord\", error=\"invalid_token\"");
  }
  const bool read_only = request.method == "GET" || request.method == "HEAD";
  if (entry->role == Role::kRead && !read_only) {
    return Refuse(403, "forbidden",
                  "the token of \"" + entry->name + "\" has the read role; " + request.method +
                      " " + request.path + " needs a token with the operate role",
                  "");
  }
  request.principal = entry->name;
  return std::nullopt;
}

Guard AccessControl::AsGuard() const {
  return [this](Request& request) { return Check(request); };
}

}  // namespace txc::server
