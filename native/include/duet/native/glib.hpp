// duet/native/glib.hpp — duet inside a GLib main loop (GTK programs, GStreamer,
// anything with a GMainContext). Two ways, both on GLib's thread:
//
//  * embedded (no extra thread): GlibSource attaches a loop to a
//    GMainContext as a GSource. prepare() gives GLib the loop's timeout
//    (rounded up to milliseconds: never early), the source polls the
//    backend's own fd (epoll's), and dispatch() runs one non-blocking
//    iteration. Needs a backend with a pollable fd (epoll, kqueue).
//
//  * thread-based guest mode: glib_guest_host(context) is the GuestHost for
//    start_guest_run (duet/native/guest.hpp): the backend thread's posts
//    become idle sources attached to the context (thread-safe; it wakes
//    the context). Works with every backend.
//
// Built when GLib (glib-2.0) is found; link duet::glib.
#pragma once

#include <glib.h>

#include "duet/loop.hpp"
#include "duet/native/guest.hpp"

namespace duet::native {

class GlibSource {
 public:
  /// Attaches `loop` to `context` (nullptr: the default context) at
  /// `priority`. Throws RuntimeError if the backend has no pollable fd.
  explicit GlibSource(Loop& loop, GMainContext* context = nullptr, int priority = G_PRIORITY_DEFAULT);
  GlibSource(const GlibSource&) = delete;
  GlibSource& operator=(const GlibSource&) = delete;
  /// Detaches the source (the loop itself is not closed).
  ~GlibSource();

  GSource* source() const noexcept { return &source_->base; }

 private:
  struct Source {
    GSource base;  // first: GLib allocates the whole struct
    EmbeddedLoop* embedded;
    gpointer fd_tag;
  };
  EmbeddedLoop embedded_;
  Source* source_;
};

/// A GuestHost whose run_on_host attaches an idle source to `context`
/// (nullptr: the default context).
GuestHost glib_guest_host(GMainContext* context = nullptr);

}  // namespace duet::native
