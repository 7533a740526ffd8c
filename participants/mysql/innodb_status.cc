#include "participants/mysql/innodb_status.h"

#include <charconv>
#include <string_view>

namespace txc::participants::mysql {
namespace {

constexpr std::string_view kCounter = "\nTrx id counter ";
constexpr std::string_view kListStart = "\nLIST OF TRANSACTIONS FOR EACH SESSION:\n";
// The next section's header (srv_printf_innodb_monitor prints it right after the list).
constexpr std::string_view kListEnd = "\n--------\nFILE I/O\n";
// innodb_show_status() puts this where it dropped part of the list.
constexpr std::string_view kTruncated = "... truncated...";
constexpr std::string_view kBlock = "\n---TRANSACTION ";
constexpr std::string_view kNotStarted = ", not started";
constexpr std::string_view kPrepared = "ACTIVE (PREPARED)";
constexpr std::string_view kThreadLines[] = {"\nMariaDB thread id ", "\nMySQL thread id "};

// The decimal number at the start of `text`, if it is followed by `terminator`.
std::optional<uint64_t> LeadingNumber(std::string_view text, char terminator) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  if (end == text.data() + text.size() || *end != terminator) return std::nullopt;
  return value;
}

// The session a block's transaction is attached to: the first thread line of the block (a
// statement text, printed after it, cannot come first).
std::optional<uint64_t> SessionOf(std::string_view block) {
  std::optional<uint64_t> session;
  std::size_t first = std::string_view::npos;
  for (const std::string_view line : kThreadLines) {
    const std::size_t at = block.find(line);
    if (at == std::string_view::npos || at >= first) continue;
    first = at;
    session = LeadingNumber(block.substr(at + line.size()), ',');
  }
  return session;
}

}  // namespace

std::optional<InnodbTransactions> ParseInnodbTransactions(std::string_view status) {
  const std::size_t counter_at = status.find(kCounter);
  if (counter_at == std::string_view::npos) return std::nullopt;
  const std::size_t list_at = status.find(kListStart, counter_at);
  if (list_at == std::string_view::npos) return std::nullopt;
  const std::size_t end_at = status.find(kListEnd, list_at);
  if (end_at == std::string_view::npos) return std::nullopt;
  if (status.find(kTruncated, counter_at) != std::string_view::npos) return std::nullopt;

  InnodbTransactions result;
  const std::optional<uint64_t> counter =
      LeadingNumber(status.substr(counter_at + kCounter.size()), '\n');
  if (!counter) return std::nullopt;
  result.trx_id_counter = *counter;

  // From the newline that ends the list header, so that the first block starts with kBlock.
  std::string_view list = status.substr(list_at + kListStart.size() - 1,
                                        end_at + 1 - (list_at + kListStart.size() - 1));
  std::size_t at = list.find(kBlock);
  while (at != std::string_view::npos) {
    const std::size_t next = list.find(kBlock, at + 1);
    const std::string_view block =
        list.substr(at, next == std::string_view::npos ? list.size() - at : next - at);
    at = next;
    const std::optional<uint64_t> session = SessionOf(block);
    if (!session) continue;  // not attached to any session
    const std::string_view header =
        block.substr(kBlock.size(), block.find('\n', kBlock.size()) - kBlock.size());
    AttachedTransaction transaction;
    transaction.session_id = *session;
    transaction.trx_id = LeadingNumber(header, ',');
    transaction.started = header.find(kNotStarted) == std::string_view::npos;
    transaction.prepared = header.find(kPrepared) != std::string_view::npos;
    result.attached.push_back(transaction);
  }
  return result;
}

}  // namespace txc::participants::mysql
