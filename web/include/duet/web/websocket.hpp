// duet/web/websocket.hpp — a browser WebSocket as an async stream.
//
//   duet::web::WebSocket ws = co_await duet::web::WebSocket::connect("ws://127.0.0.1:8080/chat");
//   ws.send("hello");
//   duet::web::WebSocketMessage m = co_await ws.receive();       // text or binary
//   co_await ws.close();                                          // 1000, waits for the close handshake
//
// Messages that arrive while nobody is receiving are queued in C++, in
// order, so cancelling a receive() (a timeout scope, a task cancel) never
// loses one: the next receive() gets it. receive() after the connection is
// closed — by either side or by a failure — raises WebSocketClosed with the
// close code and reason (1006 for an abnormal closure), once the queued
// messages are consumed. send() on a socket that is not open raises
// WebSocketClosed too; the browser buffers sends (bufferedAmount()), there
// is no drain. Where the environment has no WebSocket (Node 20), connect()
// raises JsError saying so.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "duet/coro.hpp"

namespace duet::web {

struct WebSocketMessage {
  bool binary = false;
  /// The text (UTF-8) or the bytes.
  std::string data;
};

class WebSocketClosed : public std::runtime_error {
 public:
  WebSocketClosed(int code, std::string reason);
  int code() const noexcept { return code_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  int code_;
  std::string reason_;
};

class WebSocket {
 public:
  /// Opens a connection; returns once it is open. Raises WebSocketClosed
  /// if it closes first (refused, failed handshake), JsError for a bad URL
  /// or a missing WebSocket. Cancelling it closes the socket.
  static Coro<WebSocket> connect(std::string url, std::vector<std::string> protocols = {});

  void send(std::string_view text);
  void send_binary(const void* data, std::size_t size);
  /// The next message, in order of arrival.
  Coro<WebSocketMessage> receive();
  /// Starts the closing handshake and waits until the socket is closed.
  Coro<void> close(int code = 1000, std::string reason = {});

  bool is_open() const noexcept;
  /// The subprotocol the server chose ("" if none).
  std::string protocol() const;
  std::uint64_t buffered_amount() const;

  struct State;

 private:
  explicit WebSocket(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace duet::web
