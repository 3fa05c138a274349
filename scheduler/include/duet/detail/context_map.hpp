// duet/detail/context_map.hpp — the persistent map behind a Context: from
// ContextVar ids to values, with O(1) snapshots.
//
// CPython keeps a context's variables in a HAMT (Python/hamt.c) so that
// copy_context() is O(1) and set() is O(log n). ContextVar ids here are
// small integers handed out in order, so the hash trie degenerates into a
// bitmap-compressed radix trie on the id itself: 5 bits per level, so a
// program with up to 32 variables has a one-node map, and lookup is a bit
// test, a popcount and a load.
//
// Sharing and mutation:
//  * Nodes and values are reference counted (atomically: a snapshot can
//    travel to another thread with call_soon_threadsafe or an executor).
//  * A node reachable only through the reference being modified (count 1,
//    all the way from the root) is updated in place — the common case of a
//    task setting its own variables with no snapshot taken since. Anything
//    else is copied along the path ("path copying"), so a snapshot never
//    sees a later set().
//  * The empty map is nullptr.
//
// map_set and map_erase update an owned reference in place; when they throw
// (out of memory) the map still holds the same bindings.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace duet::detail {

/// A value of some ContextVar<T>, type-erased and shared between maps.
struct ContextValue {
  std::atomic<std::uint32_t> refs{1};
  void (*destroy)(ContextValue*) noexcept;
};

struct alignas(void*) ContextMapNode {
  std::atomic<std::uint32_t> refs{1};
  std::uint32_t bitmap = 0;  // bit i set: slot for key digit i present
  std::uint8_t shift = 0;    // this node indexes key bits [shift, shift + 5)
  std::uint8_t count = 0;    // popcount(bitmap)
  std::uint8_t capacity = 0; // slots allocated after the header

  static constexpr unsigned kBits = 5;
  static constexpr unsigned kWidth = 1u << kBits;

  // Children (shift > 0) or ContextValue* (shift == 0), in digit order.
  void** slots() noexcept { return reinterpret_cast<void**>(this + 1); }
  void* const* slots() const noexcept { return reinterpret_cast<void* const*>(this + 1); }
};

/// popcount without a library call: baseline x86-64 has no POPCNT
/// instruction, and std::popcount then calls libgcc's __popcountdi2 through
/// the PLT, which made a lookup twice as slow.
constexpr unsigned popcount32(std::uint32_t x) noexcept {
#if defined(__POPCNT__) || defined(__wasm__) || defined(__aarch64__)
  return static_cast<unsigned>(std::popcount(x));
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0Fu;
  return (x * 0x01010101u) >> 24;
#endif
}

inline void retain(ContextValue* value) noexcept { value->refs.fetch_add(1, std::memory_order_relaxed); }
inline void release(ContextValue* value) noexcept {
  if (value->refs.load(std::memory_order_acquire) == 1 || value->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
    value->destroy(value);
}

/// A new reference to `map` (nullptr stays nullptr).
inline ContextMapNode* retain(ContextMapNode* map) noexcept {
  if (map) map->refs.fetch_add(1, std::memory_order_relaxed);
  return map;
}
void destroy_map_node(ContextMapNode* node) noexcept;
inline void release(ContextMapNode* map) noexcept {
  // The only reference needs no atomic decrement: nobody else can be
  // copying it (saves about 7 ns on this machine's locked instructions).
  if (map && (map->refs.load(std::memory_order_acquire) == 1 ||
              map->refs.fetch_sub(1, std::memory_order_acq_rel) == 1))
    destroy_map_node(map);
}

/// The value bound to `key`, or nullptr. Borrowed: valid while `map` is.
inline ContextValue* map_lookup(const ContextMapNode* node, std::uint32_t key) noexcept {
  if (!node || (key >> node->shift) >= ContextMapNode::kWidth) return nullptr;
  for (;;) {
    const std::uint32_t bit = 1u << ((key >> node->shift) & (ContextMapNode::kWidth - 1));
    if (!(node->bitmap & bit)) return nullptr;
    void* slot = node->slots()[popcount32(node->bitmap & (bit - 1))];
    if (node->shift == 0) return static_cast<ContextValue*>(slot);
    node = static_cast<const ContextMapNode*>(slot);
  }
}

/// Binds key to value (whose reference is consumed, also on failure). The
/// value it replaces, if any, is handed back through *old (an owned
/// reference), else nullptr.
void map_set(ContextMapNode*& map, std::uint32_t key, ContextValue* value, ContextValue** old);

/// Removes key; its value, if any, is handed back through *old.
void map_erase(ContextMapNode*& map, std::uint32_t key, ContextValue** old);

/// Number of keys bound.
std::size_t map_size(const ContextMapNode* map) noexcept;

}  // namespace duet::detail
