// duet/web/fetch.hpp — the browser's (and Node's) fetch() from a C++ task.
//
//   duet::web::Response r = co_await duet::web::fetch("/api/items");
//   if (r.ok()) use(r.text());
//   auto r2 = co_await duet::timeout(2s, duet::web::fetch(url, {.method = "POST", .body = "x"}));
//
// The whole body is read before the result is returned (text() and bytes()
// are then plain accessors). Cancelling the awaiting task — directly, or by a
// timeout scope — aborts the request through its AbortController; the
// fetch then rejects in JavaScript and that rejection is dropped. A network
// failure (refused connection, CORS, DNS) raises JsError ("TypeError: fetch
// failed" or the browser's wording); an HTTP error status is not an error,
// as in JavaScript: check status or ok().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "duet/coro.hpp"

namespace duet::web {

struct FetchOptions {
  std::string method = "GET";
  /// Request headers, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The request body; none when unset.
  std::optional<std::string> body;
};

struct Response {
  int status = 0;
  std::string status_text;
  /// The final URL (after redirects).
  std::string url;
  /// Response headers as the Headers object lists them (names lower-case).
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::uint8_t> body;

  bool ok() const noexcept { return status >= 200 && status <= 299; }
  std::string text() const { return std::string(body.begin(), body.end()); }
  const std::vector<std::uint8_t>& bytes() const noexcept { return body; }
  /// The first header with this name (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
};

Coro<Response> fetch(std::string url, FetchOptions options = {});

}  // namespace duet::web
