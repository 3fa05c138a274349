#include "duet/web/fetch.hpp"

#include <algorithm>
#include <cctype>

#include "duet/web/js.hpp"
#include "js_imports.hpp"

namespace duet::web {

std::optional<std::string> Response::header(std::string_view name) const {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [k, v] : headers)
    if (same(k, name)) return v;
  return std::nullopt;
}

namespace {

Response to_response(const JsValue& r) {
  Response out;
  out.status = static_cast<int>(r["status"].to_number());
  out.status_text = r["statusText"].to_string();
  out.url = r["url"].to_string();
  JsValue headers = r["headers"];
  const int n = static_cast<int>(headers["length"].to_number());
  out.headers.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    JsValue pair = headers[std::to_string(i)];
    out.headers.emplace_back(pair["0"].to_string(), pair["1"].to_string());
  }
  out.body = r["body"].to_bytes();
  return out;
}

}  // namespace

Coro<Response> fetch(std::string url, FetchOptions options) {
  std::string headers;
  for (const auto& [k, v] : options.headers) {
    if (k.empty() || k.find_first_of(":\r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      throw ValueError("duet::web::fetch: invalid header name or value: '" + k + "'");
    headers += k + ": " + v + "\n";
  }
  const char* body = options.body ? options.body->data() : nullptr;
  const std::size_t body_size = options.body ? options.body->size() : 0;
  JsValue request =
      JsValue::adopt(duet_web_js_fetch(url.data(), url.size(), options.method.data(), options.method.size(),
                                       headers.data(), headers.size(), body, body_size, options.body ? 1 : 0));
  JsValue controller = request["controller"];
  auto abort = [controller] {
    if (controller.truthy()) controller.call("abort");
  };
  Future<JsValue> settled = await_promise(request["promise"], abort);
  JsValue result = co_await settled;
  co_return to_response(result);
}

}  // namespace duet::web
