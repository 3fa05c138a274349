// duet/context.hpp — context variables (PEP 567): ContextVar, Token,
// Context, copy_context.
//
//   duet::ContextVar<std::string> request_id("request_id", "-");
//   auto token = request_id.set("r-17");   // visible to this task and to
//   loop.call_soon(log_line);                // what it schedules or spawns,
//   request_id.reset(token);                 // never to its creator
//
// Where code runs (asyncio's rules, applied by the loop with no help from
// the caller):
//  * a callback (call_soon, call_later, call_at, call_soon_threadsafe, a
//    future's done callback) runs in a copy of the context that was current
//    when it was scheduled, or in the Context it was given;
//  * a task runs every step in its own context: a copy of its creator's
//    current context, or the Context given to create_task;
//  * outside the loop each thread has its own context.
//
// A Context is a reference to a context object, as in Python: copying a
// Context shares it, copy_context() and copy() make a new one (O(1): the
// variables are a persistent map, see detail/context_map.hpp). ctx.run(fn)
// makes ctx current during fn; what fn sets stays in ctx. One context can
// be entered by one run at a time (RuntimeError otherwise, as CPython).
//
// Threads: ContextVar::get/set/reset act on the calling thread's current
// context. A Context may be handed to and run on another thread; reading a
// Context's mapping (get/contains/size) while another thread runs it is a
// data race, as for any standard container.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "duet/detail/context_map.hpp"
#include "duet/detail/frame_allocator.hpp"
#include "duet/errors.hpp"

namespace duet {

template <class T>
class ContextVar;
class Context;

namespace detail {

/// A context object (CPython's PyContext).
struct ContextState : FramePooled {
  std::atomic<std::uint32_t> refs{1};
  std::atomic<bool> entered{false};
  bool borrowed = false;      // `map` is not owned (the loop's callback context)
  std::uint64_t id = 0;       // identity for tokens, assigned at the first set(); 0: none yet
  ContextMapNode* map = nullptr;

  ContextState() = default;
  ContextState(const ContextState&) = delete;
  ContextState& operator=(const ContextState&) = delete;
  ~ContextState() {
    if (!borrowed) release(std::exchange(map, nullptr));  // empty while values are destroyed
  }
};

inline void retain(ContextState* state) noexcept { state->refs.fetch_add(1, std::memory_order_relaxed); }
inline void release(ContextState* state) noexcept {
  if (state->refs.load(std::memory_order_acquire) == 1 || state->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
    delete state;
}

/// This thread's current context; never nullptr. Until the thread first
/// sets a variable outside any context it is g_empty_context, an empty
/// context shared by every thread and never changed, so that reading it
/// needs neither a TLS guard nor a null check.
extern constinit ContextState g_empty_context;
extern thread_local constinit ContextState* t_context;

/// The variables of the current context (borrowed).
inline ContextMapNode* current_context_map() noexcept { return t_context->map; }

/// The current context, creating the thread's default one if needed.
ContextState& current_context_state();

/// The identity tokens record (assigned on first use).
std::uint64_t context_identity(ContextState& state) noexcept;

/// Binds key to value in `state` (value's reference is consumed, also on
/// failure); returns the replaced value (owned) or nullptr.
ContextValue* context_set(ContextState& state, std::uint32_t key, ContextValue* value);
/// Restores key to `old` (borrowed; nullptr: unbound).
void context_restore(ContextState& state, std::uint32_t key, ContextValue* old);

std::uint32_t new_context_var_id() noexcept;

[[noreturn]] void throw_context_entered();

/// Makes `state` the current context for a scope (Context.run): refuses a
/// context already entered, here or on another thread.
class EnteredContext {
 public:
  explicit EnteredContext(ContextState& state) : state_(state), previous_(t_context) {
    if (state.entered.exchange(true, std::memory_order_acquire)) throw_context_entered();
    retain(&state_);  // fn may drop the last Context handle while it runs
    t_context = &state_;
  }
  EnteredContext(const EnteredContext&) = delete;
  EnteredContext& operator=(const EnteredContext&) = delete;
  ~EnteredContext() {
    t_context = previous_;
    state_.entered.store(false, std::memory_order_release);
    release(&state_);
  }

 private:
  ContextState& state_;
  ContextState* previous_;
};

template <class T>
struct ContextValueOf final : ContextValue, FramePooled {
  template <class... Args>
  explicit ContextValueOf(Args&&... args) : value(std::forward<Args>(args)...) {
    destroy = [](ContextValue* self) noexcept { delete static_cast<ContextValueOf*>(self); };
  }
  T value;
};

template <class T>
const T& value_of(const ContextValue* value) noexcept {
  return static_cast<const ContextValueOf<T>*>(value)->value;
}

struct ContextAccess {
  static ContextState* state(const Context& context) noexcept;
};

}  // namespace detail

/// A context object: a mapping from ContextVars to values.
class Context {
 public:
  /// A new, empty context (contextvars.Context()).
  Context() : state_(new detail::ContextState) {}
  /// Shares `other` (the same context object, as Python's assignment).
  Context(const Context& other) noexcept : state_(other.state_) { detail::retain(state_); }
  Context& operator=(const Context& other) noexcept {
    detail::retain(other.state_);
    detail::release(std::exchange(state_, other.state_));
    return *this;
  }
  ~Context() { detail::release(state_); }

  /// A new context with the same variables (Context.copy()); O(1).
  Context copy() const;

  /// Calls fn(args...) with this context current and returns its result;
  /// the previous context is current again afterwards, also when fn throws.
  /// Throws RuntimeError if this context is already entered.
  template <class F, class... Args>
  std::invoke_result_t<F, Args...> run(F&& fn, Args&&... args) const {
    detail::EnteredContext scope(*state_);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// The variable's value in this context, if it has one (ctx.get(var)).
  template <class T>
  std::optional<T> get(const ContextVar<T>& var) const {
    if (const detail::ContextValue* v = detail::map_lookup(state_->map, var.id_)) return detail::value_of<T>(v);
    return std::nullopt;
  }
  template <class T>
  bool contains(const ContextVar<T>& var) const noexcept {
    return detail::map_lookup(state_->map, var.id_) != nullptr;
  }
  /// Number of variables with a value in this context.
  std::size_t size() const noexcept { return detail::map_size(state_->map); }
  bool empty() const noexcept { return state_->map == nullptr; }

  /// Whether both refer to the same context object (Python's `is`).
  bool is(const Context& other) const noexcept { return state_ == other.state_; }

 private:
  friend struct detail::ContextAccess;
  friend Context copy_context();
  struct Adopt {};
  Context(detail::ContextState* state, Adopt) noexcept : state_(state) {}

  detail::ContextState* state_;  // never nullptr; one reference
};

/// A new context holding the current context's variables
/// (contextvars.copy_context()); O(1).
Context copy_context();

inline detail::ContextState* detail::ContextAccess::state(const Context& context) noexcept { return context.state_; }

/// A context variable (contextvars.ContextVar). Values are read by copy;
/// keep large or shared values behind a std::shared_ptr<const X>. A
/// ContextVar is an identity: not copyable; it must outlive its tokens.
template <class T>
class ContextVar {
  static_assert(std::is_copy_constructible_v<T>, "ContextVar values are read by copy");
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  /// What set() returns and reset() takes (contextvars.Token).
  class Token {
   public:
    Token(Token&& other) noexcept
        : var_(other.var_), context_id_(other.context_id_), old_(std::exchange(other.old_, nullptr)),
          used_(other.used_) {}
    Token& operator=(Token&& other) noexcept {
      if (this != &other) {
        if (old_) detail::release(old_);
        var_ = other.var_;
        context_id_ = other.context_id_;
        old_ = std::exchange(other.old_, nullptr);
        used_ = other.used_;
      }
      return *this;
    }
    ~Token() {
      if (old_) detail::release(old_);
    }

    const ContextVar& var() const noexcept { return *var_; }
    /// The value before set(), or nullopt if there was none (Token.MISSING).
    std::optional<T> old_value() const {
      if (old_) return detail::value_of<T>(old_);
      return std::nullopt;
    }
    bool has_old_value() const noexcept { return old_ != nullptr; }
    bool used() const noexcept { return used_; }

   private:
    friend class ContextVar;
    Token(const ContextVar* var, std::uint64_t context_id, detail::ContextValue* old) noexcept
        : var_(var), context_id_(context_id), old_(old) {}

    const ContextVar* var_;
    std::uint64_t context_id_;
    detail::ContextValue* old_;  // owned; nullptr: MISSING
    bool used_ = false;
  };

  explicit ContextVar(std::string name) : id_(detail::new_context_var_id()), name_(std::move(name)) {}
  ContextVar(std::string name, T default_value)
      : id_(detail::new_context_var_id()), name_(std::move(name)), default_(std::move(default_value)) {}
  ContextVar(const ContextVar&) = delete;
  ContextVar& operator=(const ContextVar&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::optional<T>& default_value() const noexcept { return default_; }

  /// The value in the current context, else the default; throws
  /// LookupError when there is neither.
  T get() const {
    if (const detail::ContextValue* v = lookup()) return detail::value_of<T>(v);
    if (default_) return *default_;
    throw LookupError("ContextVar '" + name_ + "' has no value in the current context and no default");
  }
  /// The value in the current context, else `fallback` (var.get(default)).
  T get(T fallback) const {
    if (const detail::ContextValue* v = lookup()) return detail::value_of<T>(v);
    return fallback;
  }
  /// The value in the current context, else the default, else nullopt.
  std::optional<T> try_get() const {
    if (const detail::ContextValue* v = lookup()) return detail::value_of<T>(v);
    return default_;
  }

  /// Gives the variable a new value in the current context.
  Token set(T value) {
    auto* box = new detail::ContextValueOf<T>(std::move(value));
    detail::ContextState& state = detail::current_context_state();
    detail::ContextValue* old = detail::context_set(state, id_, box);
    return Token(this, detail::context_identity(state), old);
  }

  /// Restores the value the variable had before the set() that made the
  /// token. Throws RuntimeError if the token was used already, ValueError
  /// if it comes from another variable or was made in another context.
  void reset(Token& token) {
    if (token.used_) throw RuntimeError(describe(token) + " has already been used once");
    if (token.var_ != this) throw ValueError(describe(token) + " was created by a different ContextVar");
    detail::ContextState& state = detail::current_context_state();
    if (state.id == 0 || state.id != token.context_id_)
      throw ValueError(describe(token) + " was created in a different Context");
    detail::context_restore(state, id_, token.old_);
    token.used_ = true;
  }
  void reset(Token&& token) { reset(token); }

 private:
  friend class Context;

  const detail::ContextValue* lookup() const noexcept {
    return detail::map_lookup(detail::current_context_map(), id_);
  }
  static std::string describe(const Token& token) { return "<Token var='" + token.var_->name_ + "'>"; }

  std::uint32_t id_;
  std::string name_;
  std::optional<T> default_;
};

}  // namespace duet
