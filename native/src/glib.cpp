#include "duet/native/glib.hpp"

#include <chrono>
#include <functional>
#include <limits>

#include "duet/errors.hpp"

namespace duet::native {
namespace {

struct SourceAccess {
  GSource base;
  EmbeddedLoop* embedded;
  gpointer fd_tag;
};

gint to_glib_timeout(std::optional<Duration> timeout) {
  if (!timeout) return -1;
  if (timeout->count() <= 0) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();  // never early
  return ms > std::numeric_limits<gint>::max() ? std::numeric_limits<gint>::max() : static_cast<gint>(ms);
}

gboolean prepare(GSource* source, gint* timeout) {
  auto* self = reinterpret_cast<SourceAccess*>(source);
  const std::optional<Duration> t = self->embedded->timeout();
  *timeout = to_glib_timeout(t);
  return *timeout == 0;  // callbacks ready or a timer due: dispatch without polling
}

gboolean check(GSource* source) {
  auto* self = reinterpret_cast<SourceAccess*>(source);
  if (g_source_query_unix_fd(source, self->fd_tag) & G_IO_IN) return TRUE;
  const std::optional<Duration> t = self->embedded->timeout();
  return t && t->count() <= 0;
}

gboolean dispatch(GSource* source, GSourceFunc, gpointer) {
  auto* self = reinterpret_cast<SourceAccess*>(source);
  try {
    self->embedded->run_once();
  } catch (const std::exception& e) {
    // Only misuse gets here (a callback cannot throw out of process_ready):
    // GLib cannot carry a C++ exception, so say it and stop the source.
    g_critical("duet: run_once failed: %s", e.what());
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

GSourceFuncs g_funcs = {prepare, check, dispatch, nullptr, nullptr, nullptr};

}  // namespace

GlibSource::GlibSource(Loop& loop, GMainContext* context, int priority) : embedded_(loop), source_(nullptr) {
  static_assert(sizeof(Source) == sizeof(SourceAccess));
  if (embedded_.fd() < 0)
    throw RuntimeError("GlibSource: the loop's backend (" + std::string(loop.backend().name()) +
                       ") has no pollable fd; embedding needs epoll or kqueue (or use glib_guest_host)");
  source_ = reinterpret_cast<Source*>(g_source_new(&g_funcs, sizeof(Source)));
  source_->embedded = &embedded_;
  source_->fd_tag = g_source_add_unix_fd(&source_->base, embedded_.fd(), G_IO_IN);
  g_source_set_priority(&source_->base, priority);
  g_source_set_name(&source_->base, "duet");
  g_source_attach(&source_->base, context);
}

GlibSource::~GlibSource() {
  g_source_destroy(&source_->base);
  g_source_unref(&source_->base);
}

GuestHost glib_guest_host(GMainContext* context) {
  return GuestHost{[context](std::function<void()> fn) {
    GSource* idle = g_idle_source_new();
    // Default priority, not idle: a busy default-priority source must not
    // starve duet's iterations.
    g_source_set_priority(idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(
        idle,
        [](gpointer data) -> gboolean {
          (*static_cast<std::function<void()>*>(data))();
          return G_SOURCE_REMOVE;
        },
        new std::function<void()>(std::move(fn)),
        [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
    g_source_attach(idle, context);  // thread-safe; wakes the context
    g_source_unref(idle);
  }};
}

}  // namespace duet::native
