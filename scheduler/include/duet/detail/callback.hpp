// duet/detail/callback.hpp — type-erased `void()` callables without
// std::function.
//
// Every scheduled callback is stored through one of these. It is hot:
// call_soon stores one and process_ready calls and destroys it, millions of
// times a second. So:
//  * a callable is described by one static table per type (CallableOps):
//    invoke, destroy (nullptr when there is nothing to destroy, so the
//    common capture-a-few-references lambda costs no destroy call) and its
//    type for error reports;
//  * storage is the caller's: the ready queue stores callables inline in
//    its blocks, a HandleNode (timers, thread-safe posts) in a fixed
//    40-byte buffer (Callback below); what does not fit, or whose move may
//    throw, goes to the heap behind one pointer;
//  * storage never moves (blocks and nodes are address-stable), so the
//    table needs no move operation.
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

struct CallableOps {
  void (*invoke)(void* storage);
  void (*destroy)(void* storage) noexcept;  // nullptr: trivially destructible
  const std::type_info& (*type)() noexcept;
};

template <class Fn>
const std::type_info& type_of() noexcept {
  return typeid(Fn);
}

/// The table for an Fn stored in place.
template <class Fn>
inline constexpr CallableOps kInplaceOps{
    [](void* p) { (*std::launder(static_cast<Fn*>(p)))(); },
    std::is_trivially_destructible_v<Fn> ? nullptr
                                         : +[](void* p) noexcept { std::launder(static_cast<Fn*>(p))->~Fn(); },
    &type_of<Fn>,
};

/// The table for an Fn kept on the heap, with the Fn* stored in place.
template <class Fn>
inline constexpr CallableOps kBoxedOps{
    [](void* p) { (**static_cast<Fn**>(p))(); },
    [](void* p) noexcept { delete *static_cast<Fn**>(p); },
    &type_of<Fn>,
};

/// Whether an Fn is stored in place in `capacity` bytes aligned to `align`.
template <class Fn>
constexpr bool stored_in_place(std::size_t capacity, std::size_t align) {
  return sizeof(Fn) <= capacity && alignof(Fn) <= align && std::is_nothrow_move_constructible_v<Fn>;
}

/// Constructs fn at `storage` (or boxes it there) and returns its table.
template <class F>
const CallableOps* construct_callable(void* storage, std::size_t capacity, std::size_t align, F&& fn) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "a duet callback must be callable with no arguments");
  if (stored_in_place<Fn>(capacity, align)) {
    ::new (storage) Fn(std::forward<F>(fn));
    return &kInplaceOps<Fn>;
  }
  Fn* boxed = new Fn(std::forward<F>(fn));
  ::new (storage) Fn*(boxed);
  return &kBoxedOps<Fn>;
}

/// The bytes a callable occupies when stored in place in a queue whose
/// slots are aligned to `align` and may hold up to `max_inline` bytes.
template <class F>
constexpr std::size_t stored_size(std::size_t max_inline, std::size_t align) {
  using Fn = std::decay_t<F>;
  return stored_in_place<Fn>(max_inline, align) ? sizeof(Fn) : sizeof(Fn*);
}

/// A callable in a fixed 40-byte buffer (used by HandleNode).
class Callback {
 public:
  static constexpr std::size_t kInlineSize = 40;

  Callback() noexcept = default;
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  template <class F>
  void emplace(F&& fn) {
    ops_ = construct_callable(storage_, kInlineSize, alignof(std::max_align_t), std::forward<F>(fn));
  }

  bool empty() const noexcept { return ops_ == nullptr; }
  void operator()() { ops_->invoke(storage_); }

  /// Destroys the stored callable (and whatever it captured).
  void reset() noexcept {
    if (const CallableOps* ops = ops_) {
      ops_ = nullptr;
      if (ops->destroy) ops->destroy(storage_);
    }
  }

  const std::type_info& target_type() const noexcept { return ops_ ? ops_->type() : typeid(void); }

 private:
  alignas(std::max_align_t) unsigned char storage_[kInlineSize];
  const CallableOps* ops_ = nullptr;
};

}  // namespace duet::detail
