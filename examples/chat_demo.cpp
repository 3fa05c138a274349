// duet chat demo: a small chat server and three clients, in one process, on
// 127.0.0.1, over duet's TCP streams. It exits by itself in about a second.
//
//  * the server (start_server) runs one task per connection; each
//    connection's id lives in a ContextVar, so every log line the server
//    writes while serving it carries the right id without passing it around;
//  * a line protocol: "NICK <name>", then lines that the server relays to
//    every other client through a per-client Queue drained by a writer task
//    (a slow client never blocks the others: its queue is bounded, and
//    drain() applies the socket's back-pressure);
//  * timers: clients talk at their own pace (sleep), and a client silent
//    for 300 ms is disconnected by a timeout around readline();
//  * the clients resolve the host name through getaddrinfo, which duet runs
//    in its thread-pool executor (as asyncio does);
//  * at the end: what the server relayed, per connection.
#include <chrono>
#include <cstdio>
#include <duet/duet.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

namespace {

duet::ContextVar<std::string> connection_id("connection_id", "server");

void log(const std::string& text) {
  std::printf("  [%-6s] %s\n", connection_id.get().c_str(), text.c_str());
}

struct Client {
  std::string nick;
  duet::Queue<std::string> outbox{64};
  int relayed = 0;  // lines this client sent that were relayed to others
};

struct ChatServer {
  std::map<std::string, std::shared_ptr<Client>> clients;  // by connection id
  int next_id = 1;

  void broadcast(const std::string& from, const std::string& line) {
    for (auto& [id, client] : clients)
      if (id != from && client->outbox.full() == false) client->outbox.put_nowait(line);
  }
};

// Sends what other clients said, in order, as fast as this client takes it.
Coro<void> writer_task(std::shared_ptr<Client> client, StreamWriter writer) {
  for (;;) {
    std::string line = co_await client->outbox.get();
    writer.write(line);
    co_await writer.drain();
  }
}

Coro<void> serve_client(ChatServer& chat, StreamReader reader, StreamWriter writer) {
  const std::string id = "conn" + std::to_string(chat.next_id++);
  connection_id.set(id);  // this task's context only
  log("connected from " + writer.peer_address().to_string());
  auto client = std::make_shared<Client>();
  chat.clients[id] = client;
  duet::Task<void> sending = duet::create_task(writer_task(client, writer));
  try {
    for (;;) {
      // A client silent for 300 ms is dropped (asyncio.timeout).
      std::string line = co_await duet::wait_for(duet::create_task(reader.readline()), 300ms);
      if (line.empty()) break;  // EOF
      if (line.starts_with("NICK ")) {
        client->nick = line.substr(5, line.size() - 6);
        log("is now known as " + client->nick);
        chat.broadcast(id, "* " + client->nick + " joined\n");
      } else if (line == "QUIT\n") {
        break;
      } else {
        chat.broadcast(id, "<" + client->nick + "> " + line);
        ++client->relayed;
      }
    }
  } catch (const duet::TimeoutError&) {
    log("silent for 300 ms: disconnecting");
    writer.write("* idle timeout, bye\n");
  }
  log(client->nick + " left after " + std::to_string(client->relayed) +
      (client->relayed == 1 ? " message" : " messages"));
  chat.broadcast(id, "* " + client->nick + " left\n");
  // What is still queued for this client is sent before closing.
  while (!client->outbox.empty()) co_await duet::yield_now();
  sending.cancel();
  chat.clients.erase(id);
  writer.close();
  co_await writer.wait_closed();
}

// A client: says its lines at its own pace, printing what it hears.
Coro<std::vector<std::string>> chatter(std::uint16_t port, std::string nick, std::vector<std::string> lines,
                                       std::chrono::milliseconds pace, bool go_silent) {
  auto [reader, writer] = co_await open_connection("localhost", port);
  std::vector<std::string> heard;
  auto listen = [&heard, &reader]() -> Coro<void> {
    for (;;) {
      std::string line = co_await reader.readline();
      if (line.empty()) co_return;
      heard.push_back(line.substr(0, line.size() - 1));
    }
  };
  duet::Task<void> listening = duet::create_task(listen());
  writer.write("NICK " + nick + "\n");
  for (const std::string& line : lines) {
    co_await duet::sleep(pace);
    writer.write(line + "\n");
    co_await writer.drain();
  }
  if (!go_silent) {
    co_await duet::sleep(150ms);
    writer.write("QUIT\n");
  }
  co_await listening;  // until the server closes the connection
  writer.close();
  co_return heard;
}

Coro<int> main_task() {
  ChatServer chat;
  auto handler = [&chat](StreamReader reader, StreamWriter writer) -> Coro<void> {
    co_await serve_client(chat, std::move(reader), std::move(writer));
  };
  Server server = co_await start_server(handler, "127.0.0.1", 0);
  const std::uint16_t port = server.port();
  log("listening on " + server.addresses().front().to_string());

  const auto start = duet::get_running_loop().time();
  auto alice =
      duet::create_task(chatter(port, "alice", {"hi all", "anyone here?", "duet runs this chat"}, 60ms, false));
  co_await duet::sleep(20ms);
  auto bob = duet::create_task(chatter(port, "bob", {"hello alice", "yes, on one thread"}, 80ms, false));
  co_await duet::sleep(20ms);
  auto carol = duet::create_task(chatter(port, "carol", {"lurking"}, 50ms, true));  // then silent: timed out

  std::vector<std::string> heard_by_alice = co_await alice;
  std::vector<std::string> heard_by_bob = co_await bob;
  std::vector<std::string> heard_by_carol = co_await carol;
  server.close();
  co_await server.wait_closed();
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(duet::get_running_loop().time() - start);

  std::printf("\nwhat each client heard:\n");
  for (auto& [name, heard] :
       {std::pair{"alice", &heard_by_alice}, {"bob", &heard_by_bob}, {"carol", &heard_by_carol}}) {
    std::printf("  %s (%zu lines)\n", name, heard->size());
    for (const std::string& line : *heard) std::printf("      %s\n", line.c_str());
  }
  std::printf("\nsummary: 3 clients, %zu connections left open, %lld ms\n", server.active_connections(),
              static_cast<long long>(elapsed.count()));
  co_return 0;
}

}  // namespace

int main() {
  std::printf("duet chat demo: a chat server and three clients on 127.0.0.1\n\n");
  return duet::run(main_task());
}
