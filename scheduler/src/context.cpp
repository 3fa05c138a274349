// Context variables: the persistent map (detail/context_map.hpp), the
// per-thread current context, and the out-of-line parts of Context.
#include "duet/context.hpp"

#include <algorithm>
#include <new>

namespace duet::detail {

// ---- the persistent map ------------------------------------------------------

namespace {

using Node = ContextMapNode;

constexpr std::size_t node_bytes(std::size_t capacity) { return sizeof(Node) + capacity * sizeof(void*); }

Node* allocate_node(std::uint8_t shift, std::size_t capacity) {
  // Room to grow a little in place: sets of new variables in a task's own
  // context then rarely reallocate.
  capacity = std::min<std::size_t>((capacity + 3) & ~std::size_t{3}, Node::kWidth);
  Node* node = ::new (frame_allocate(node_bytes(capacity))) Node;
  node->shift = shift;
  node->capacity = static_cast<std::uint8_t>(capacity);
  return node;
}

void free_node(Node* node) noexcept {
  const std::size_t bytes = node_bytes(node->capacity);
  node->~Node();
  frame_deallocate(node, bytes);
}

void release_slot(const Node* node, void* slot) noexcept {
  if (node->shift == 0)
    release(static_cast<ContextValue*>(slot));
  else
    release(static_cast<Node*>(slot));
}

void retain_slot(const Node* node, void* slot) noexcept {
  if (node->shift == 0)
    retain(static_cast<ContextValue*>(slot));
  else
    retain(static_cast<Node*>(slot));
}

bool unique(const Node* node) noexcept { return node->refs.load(std::memory_order_acquire) == 1; }

// `node` (owned) as a node nobody else sees, with room for `extra` more
// slots: itself when it already is one, else a copy (and `node` released).
Node* make_writable(Node* node, std::size_t extra) {
  const bool mine = unique(node);
  if (mine && node->count + extra <= node->capacity) return node;
  Node* copy = allocate_node(node->shift, node->count + extra);
  copy->bitmap = node->bitmap;
  copy->count = node->count;
  std::copy_n(node->slots(), node->count, copy->slots());
  if (mine) {
    free_node(node);  // the slots' references moved to the copy
  } else {
    for (std::size_t i = 0; i < copy->count; ++i) retain_slot(copy, copy->slots()[i]);
    release(node);
  }
  return copy;
}

std::uint32_t digit(const Node* node, std::uint32_t key) noexcept {
  return (key >> node->shift) & (Node::kWidth - 1);
}

std::size_t position(const Node* node, std::uint32_t bit) noexcept {
  return popcount32(node->bitmap & (bit - 1));
}

void insert_slot(Node* node, std::uint32_t bit, void* slot) noexcept {
  const std::size_t pos = position(node, bit);
  void** slots = node->slots();
  std::copy_backward(slots + pos, slots + node->count, slots + node->count + 1);
  slots[pos] = slot;
  node->bitmap |= bit;
  ++node->count;
}

void* remove_slot(Node* node, std::uint32_t bit) noexcept {
  const std::size_t pos = position(node, bit);
  void** slots = node->slots();
  void* slot = slots[pos];
  std::copy(slots + pos + 1, slots + node->count, slots + pos);
  node->bitmap &= ~bit;
  --node->count;
  return slot;
}

// The smallest root shift whose node can index `key`.
std::uint8_t shift_for(std::uint32_t key) noexcept {
  std::uint8_t shift = 0;
  while ((key >> shift) >= Node::kWidth) shift += Node::kBits;
  return shift;
}

// A chain of single-slot nodes from `shift` down to the value.
Node* make_path(std::uint8_t shift, std::uint32_t key, ContextValue* value) {
  Node* node = allocate_node(shift, 1);
  if (shift == 0) {
    insert_slot(node, 1u << digit(node, key), value);
    return node;
  }
  try {
    insert_slot(node, 1u << digit(node, key), make_path(static_cast<std::uint8_t>(shift - Node::kBits), key, value));
  } catch (...) {
    free_node(node);
    throw;
  }
  return node;
}

// Frees a path made by make_path without releasing the value at its end.
void free_path_keeping_value(Node* node) noexcept {
  while (node) {
    Node* next = node->shift == 0 ? nullptr : static_cast<Node*>(node->slots()[0]);
    free_node(node);
    node = next;
  }
}

// Sets key in the subtree at `link` (an owned reference, non-null, whose
// node covers key), replacing nodes along the path with writable ones in
// place. On failure the map is unchanged in content and `value` was not
// consumed.
void set_in(Node*& link, std::uint32_t key, ContextValue* value, ContextValue** old) {
  const std::uint32_t bit = 1u << digit(link, key);
  if (link->bitmap & bit) {
    Node* node = link = make_writable(link, 0);
    void*& slot = node->slots()[position(node, bit)];
    if (node->shift == 0) {
      *old = static_cast<ContextValue*>(slot);
      slot = value;
    } else {
      set_in(reinterpret_cast<Node*&>(slot), key, value, old);
    }
    return;
  }
  if (link->shift == 0) {
    link = make_writable(link, 1);
    insert_slot(link, bit, value);
    return;
  }
  Node* path = make_path(static_cast<std::uint8_t>(link->shift - Node::kBits), key, value);
  try {
    link = make_writable(link, 1);
  } catch (...) {
    free_path_keeping_value(path);
    throw;
  }
  insert_slot(link, bit, path);
}

}  // namespace

void destroy_map_node(ContextMapNode* node) noexcept {
  for (std::size_t i = 0; i < node->count; ++i) release_slot(node, node->slots()[i]);
  free_node(node);
}

void map_set(ContextMapNode*& map, std::uint32_t key, ContextValue* value, ContextValue** old) {
  *old = nullptr;
  try {
    if (!map) {
      map = make_path(shift_for(key), key, value);
      return;
    }
    // Grow the root until it covers key: the old root becomes digit 0 of
    // each new level (every key it holds is below the new level's unit).
    const std::uint8_t target = std::max(map->shift, shift_for(key));
    while (map->shift < target) {
      Node* root = allocate_node(static_cast<std::uint8_t>(map->shift + Node::kBits), 1);
      insert_slot(root, 1u, map);
      map = root;
    }
    set_in(map, key, value, old);
  } catch (...) {
    release(value);
    throw;
  }
}

void map_erase(ContextMapNode*& map, std::uint32_t key, ContextValue** old) {
  *old = nullptr;
  if (!map_lookup(map, key)) return;
  // Make every node on the path writable (in place, so that a failure
  // leaves a valid map), then remove the slot and the nodes it empties,
  // bottom up.
  Node* path[8];
  std::size_t depth = 0;
  Node** link = &map;
  for (;;) {
    Node* node = *link = make_writable(*link, 0);
    path[depth++] = node;
    if (node->shift == 0) break;
    link = reinterpret_cast<Node**>(&node->slots()[position(node, 1u << digit(node, key))]);
  }
  *old = static_cast<ContextValue*>(remove_slot(path[depth - 1], 1u << digit(path[depth - 1], key)));
  for (std::size_t level = depth; level-- > 0 && path[level]->count == 0;) {
    free_node(path[level]);
    if (level == 0) {
      map = nullptr;
      return;
    }
    remove_slot(path[level - 1], 1u << digit(path[level - 1], key));
  }
  // Collapse roots left with only digit 0 (keeps lookups short). The root
  // is ours, but a child below it (off the erased key's path) may be
  // shared with a snapshot: it is handed over, never freed here.
  while (map->shift > 0 && map->count == 1 && map->bitmap == 1u) {
    Node* child = static_cast<Node*>(map->slots()[0]);
    if (unique(map)) {
      free_node(map);  // its reference to child becomes ours
    } else {
      retain(child);
      release(map);
    }
    map = child;
  }
}

std::size_t map_size(const ContextMapNode* map) noexcept {
  if (!map) return 0;
  if (map->shift == 0) return map->count;
  std::size_t n = 0;
  for (std::size_t i = 0; i < map->count; ++i) n += map_size(static_cast<const Node*>(map->slots()[i]));
  return n;
}

// ---- the current context -------------------------------------------------------

constinit ContextState g_empty_context;
thread_local constinit ContextState* t_context = &g_empty_context;

namespace {

thread_local constinit bool t_default_context_gone = false;

// The context of a thread outside any run (CPython's per-thread context).
struct ThreadDefaultContext {
  ContextState state;
  ~ThreadDefaultContext() {
    // From here a set() outside any context fails (see
    // current_context_state); values destroyed below see an empty context.
    t_default_context_gone = true;
    if (t_context == &state) t_context = &g_empty_context;
  }
};

std::atomic<std::uint32_t> g_next_var_id{0};
std::atomic<std::uint64_t> g_next_context_ids{1};

}  // namespace

ContextState& current_context_state() {
  if (ContextState* state = t_context; state != &g_empty_context) [[likely]]
    return *state;
  if (t_default_context_gone)
    throw RuntimeError("ContextVar.set() outside any context while this thread exits");
  static thread_local ThreadDefaultContext default_context;
  t_context = &default_context.state;
  return default_context.state;
}

std::uint64_t context_identity(ContextState& state) noexcept {
  if (state.id == 0) {
    // Ids come from per-thread ranges: no shared counter on this path.
    constexpr std::uint64_t kRange = 1u << 16;
    static thread_local std::uint64_t next = 0, end = 0;
    if (next == end) {
      next = g_next_context_ids.fetch_add(kRange, std::memory_order_relaxed);
      end = next + kRange;
    }
    state.id = next++;
  }
  return state.id;
}

// `state`'s map as an owned reference it may change (a borrowed map is
// shared with the ready queue, so it is retained first).
ContextMapNode*& own_map(ContextState& state) noexcept {
  if (state.borrowed) {
    retain(state.map);
    state.borrowed = false;
  }
  return state.map;
}

ContextValue* context_set(ContextState& state, std::uint32_t key, ContextValue* value) {
  ContextValue* old = nullptr;
  map_set(own_map(state), key, value, &old);
  return old;
}

void context_restore(ContextState& state, std::uint32_t key, ContextValue* old) {
  ContextValue* replaced = nullptr;
  if (old) {
    retain(old);
    map_set(own_map(state), key, old, &replaced);
  } else {
    map_erase(own_map(state), key, &replaced);
  }
  if (replaced) release(replaced);
}

std::uint32_t new_context_var_id() noexcept { return g_next_var_id.fetch_add(1, std::memory_order_relaxed); }

void throw_context_entered() { throw RuntimeError("cannot enter context: the Context is already entered"); }

}  // namespace duet::detail

namespace duet {

Context Context::copy() const {
  auto* state = new detail::ContextState;
  state->map = detail::retain(state_->map);
  return Context(state, Adopt{});
}

Context copy_context() {
  auto* state = new detail::ContextState;
  state->map = detail::retain(detail::current_context_map());
  return Context(state, Context::Adopt{});
}

}  // namespace duet
