#include "duet/web/websocket.hpp"

#include <emscripten.h>

#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "duet/future.hpp"
#include "duet/web/js.hpp"
#include "js_imports.hpp"

namespace duet::web {

WebSocketClosed::WebSocketClosed(int code, std::string reason)
    : std::runtime_error("WebSocket closed (code " + std::to_string(code) + (reason.empty() ? "" : ": " + reason) +
                         ")"),
      code_(code),
      reason_(std::move(reason)) {}

struct WebSocket::State {
  unsigned token = 0;
  JsValue ws;
  bool open = false;
  bool closed = false;
  int close_code = 0;
  std::string close_reason;
  std::deque<WebSocketMessage> queue;
  std::optional<Future<void>> opened;       // connect() waits on it
  std::optional<Future<void>> readable;     // the receive() in progress waits on it
  std::vector<Future<void>> close_waiters;  // each close() in progress has its own

  static void wake(std::optional<Future<void>>& f) {
    if (f && !f->done()) f->set_result();
    f.reset();
  }
  ~State();
};

namespace {
std::unordered_map<unsigned, WebSocket::State*>& sockets() {
  static std::unordered_map<unsigned, WebSocket::State*> table;
  return table;
}
unsigned g_next_socket = 1;
}  // namespace

WebSocket::State::~State() {
  sockets().erase(token);
  // Dropping the last handle of an open socket closes it.
  if (!closed && ws.id() > 0) {
    try {
      ws.call("close", {JsValue(1000)});
    } catch (...) {
    }
  }
}

Coro<WebSocket> WebSocket::connect(std::string url, std::vector<std::string> protocols) {
  auto state = std::make_shared<State>();
  state->token = g_next_socket++;
  std::string joined;
  for (const auto& p : protocols) joined += p + "\n";
  const int id = duet_web_js_ws_open(url.data(), url.size(), joined.data(), joined.size(), state->token);
  if (id < 0) throw JsError::from_value(JsValue::adopt(duet_web_js_take_last_error()));
  state->ws = JsValue::adopt(id);
  sockets().emplace(state->token, state.get());
  state->opened.emplace(get_running_loop());
  Future<void> opened = *state->opened;
  try {
    co_await opened;
  } catch (const CancelledError&) {
    state->ws.call("close", {JsValue(1000)});
    throw;
  }
  co_return WebSocket(state);
}

void WebSocket::send(std::string_view text) {
  if (!state_->open)
    throw WebSocketClosed(state_->closed ? state_->close_code : 1006, "send on a socket that is not open");
  state_->ws.call("send", {JsValue(text)});
}

void WebSocket::send_binary(const void* data, std::size_t size) {
  if (!state_->open)
    throw WebSocketClosed(state_->closed ? state_->close_code : 1006, "send on a socket that is not open");
  state_->ws.call("send", {JsValue::bytes(data, size)});
}

Coro<WebSocketMessage> WebSocket::receive() {
  std::shared_ptr<State> state = state_;
  for (;;) {
    if (!state->queue.empty()) {
      WebSocketMessage m = std::move(state->queue.front());
      state->queue.pop_front();
      co_return m;
    }
    if (state->closed) throw WebSocketClosed(state->close_code, state->close_reason);
    if (state->readable) throw RuntimeError("WebSocket::receive: another task is already receiving");
    state->readable.emplace(get_running_loop());
    Future<void> readable = *state->readable;
    try {
      co_await readable;
    } catch (...) {
      // Cancelled: nothing was taken from the queue. Withdraw this wait
      // only (a message may already have replaced it with another's).
      if (state->readable && state->readable->base() == readable.base()) state->readable.reset();
      throw;
    }
  }
}

Coro<void> WebSocket::close(int code, std::string reason) {
  std::shared_ptr<State> state = state_;
  if (state->closed) co_return;
  state->ws.call("close", {JsValue(code), JsValue(reason)});
  Future<void> done(get_running_loop());
  state->close_waiters.push_back(done);
  co_await done;
}

bool WebSocket::is_open() const noexcept {
  return state_->open;
}
std::string WebSocket::protocol() const {
  return state_->ws["protocol"].to_string();
}
std::uint64_t WebSocket::buffered_amount() const {
  return static_cast<std::uint64_t>(state_->ws["bufferedAmount"].to_number());
}

}  // namespace duet::web

// Called by duet_web.js for each event of a socket (see duet_web_js_ws_open).
extern "C" EMSCRIPTEN_KEEPALIVE void duet_web_ws_event(unsigned token, int kind, int value_id) {
  using namespace duet::web;
  JsValue value = JsValue::adopt(value_id);
  auto it = sockets().find(token);
  if (it == sockets().end()) return;  // every handle is gone
  WebSocket::State& s = *it->second;
  try {
    switch (kind) {
      case 0:
        s.open = true;
        WebSocket::State::wake(s.opened);
        break;
      case 1:
      case 2: {
        WebSocketMessage m;
        m.binary = kind == 2;
        if (m.binary) {
          std::vector<std::uint8_t> bytes = value.to_bytes();
          m.data.assign(bytes.begin(), bytes.end());
        } else {
          m.data = value.to_string();
        }
        s.queue.push_back(std::move(m));
        WebSocket::State::wake(s.readable);
        break;
      }
      case 3:
        s.open = false;
        s.closed = true;
        s.close_code = static_cast<int>(value["code"].to_number());
        s.close_reason = value["reason"].to_string();
        if (s.opened && !s.opened->done()) s.opened->set_exception(WebSocketClosed(s.close_code, s.close_reason));
        s.opened.reset();
        WebSocket::State::wake(s.readable);
        for (duet::Future<void>& waiter : std::exchange(s.close_waiters, {}))
          if (!waiter.done()) waiter.set_result();
        break;
      default:
        break;  // an error is followed by a close event, which reports it
    }
  } catch (const duet::RuntimeError&) {
    // The loop was closed meanwhile: nobody waits any more.
  }
}
