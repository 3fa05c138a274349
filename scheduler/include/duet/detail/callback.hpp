// duet/detail/callback.hpp — a move-only, type-erased `void()` stored inline.
//
// Every Handle carries one of these. It is hot: call_soon stores one and
// process_ready calls and destroys it, a million times a second. So:
//  * callables up to kInlineSize bytes (a lambda capturing a few pointers)
//    live inside the Handle's node, with no heap allocation;
//  * larger ones, or ones whose move may throw, go to the heap (counted by
//    the benchmark; none of duet's own callbacks do);
//  * one pointer to a static table of operations per callable type, so an
//    empty slot, a call and a destruction are each one indirect call at most.
// The storage never moves (nodes are address-stable), so no move operation
// is needed in the table.
#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace duet::detail {

/// Demangled name of a type, for handle descriptions in error reports.
std::string type_name(const std::type_info& type);

class Callback {
 public:
  static constexpr std::size_t kInlineSize = 40;

  Callback() noexcept = default;
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  template <class F>
  void emplace(F&& fn) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&>, "a duet callback must be callable with no arguments");
    if constexpr (fits_inline<Fn>()) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(fn));
      ops_ = &kInlineOps<Fn>;
    } else {
      Fn* heap = new Fn(std::forward<F>(fn));
      ::new (static_cast<void*>(storage_)) Fn*(heap);
      ops_ = &kHeapOps<Fn>;
    }
  }

  bool empty() const noexcept { return ops_ == nullptr; }

  void operator()() { ops_->invoke(storage_); }

  /// Destroys the stored callable (and whatever it captured).
  void reset() noexcept {
    if (ops_) {
      const Ops* ops = ops_;
      ops_ = nullptr;
      ops->destroy(storage_);
    }
  }

  /// The stored callable's type, or typeid(void) when empty.
  const std::type_info& target_type() const noexcept { return ops_ ? ops_->type() : typeid(void); }

 private:
  struct Ops {
    void (*invoke)(void*);
    void (*destroy)(void*) noexcept;
    const std::type_info& (*type)() noexcept;
  };

  template <class Fn>
  static constexpr bool fits_inline() {
    return sizeof(Fn) <= kInlineSize && alignof(Fn) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<Fn>;
  }

  template <class Fn>
  static const std::type_info& type_of() noexcept {
    return typeid(Fn);
  }

  template <class Fn>
  static constexpr Ops kInlineOps{
      [](void* p) { (*std::launder(static_cast<Fn*>(p)))(); },
      [](void* p) noexcept { std::launder(static_cast<Fn*>(p))->~Fn(); },
      &type_of<Fn>,
  };

  template <class Fn>
  static constexpr Ops kHeapOps{
      [](void* p) { (**static_cast<Fn**>(p))(); },
      [](void* p) noexcept { delete *static_cast<Fn**>(p); },
      &type_of<Fn>,
  };

  alignas(std::max_align_t) unsigned char storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};

}  // namespace duet::detail
