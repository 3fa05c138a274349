// duet inside a GLib main loop, embedded as a GSource (no extra thread):
// duet tasks with timers and a TCP echo exchange on 127.0.0.1 run on
// GLib's thread, interleaved with an ordinary g_timeout source; the program
// quits the GLib loop when duet's main task is done.
#include <cstdio>
#include <duet/duet.hpp>
#include <duet/native/glib.hpp>
#include <string>

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

namespace {

Coro<void> echo(StreamReader reader, StreamWriter writer) {
  std::string line = co_await reader.readline();
  writer.write("echo: " + line);
  writer.close();
}

Coro<void> duet_main(GMainLoop* glib_loop) {
  Server server = co_await start_server(echo, "127.0.0.1", 0);
  std::printf("  duet: echo server on %s\n", server.addresses().front().to_string().c_str());
  for (int i = 1; i <= 3; ++i) {
    co_await duet::sleep(20ms);
    auto [reader, writer] = co_await open_connection("127.0.0.1", server.port());
    writer.write("message " + std::to_string(i) + "\n");
    std::string reply = co_await reader.readline();
    std::printf("  duet: %s", reply.c_str());
    writer.close();
  }
  server.close();
  co_await server.wait_closed();
  g_main_loop_quit(glib_loop);
}

}  // namespace

int main() {
  std::printf("duet tasks in a GLib main loop\n");
  auto loop = new_event_loop();
  GMainLoop* glib_loop = g_main_loop_new(nullptr, FALSE);
  {
    GlibSource source(*loop);  // duet joins GLib's default context
    g_timeout_add(
        30,
        [](gpointer) -> gboolean {
          std::printf("  glib: a g_timeout fired between duet's timers\n");
          return G_SOURCE_REMOVE;
        },
        nullptr);
    auto task = loop->create_task(duet_main(glib_loop));
    g_main_loop_run(glib_loop);
    loop->run_until_complete(duet::Future<void>(task));  // already done: rethrows a failure
  }
  loop->close();
  g_main_loop_unref(glib_loop);
  std::printf("done\n");
  return 0;
}
