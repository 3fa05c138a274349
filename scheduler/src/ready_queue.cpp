// The ready queue's cold paths. See duet/detail/ready_queue.hpp.
#include "duet/detail/ready_queue.hpp"

#include "duet/context.hpp"
#include "duet/detail/handle_node.hpp"

#include <utility>

namespace duet::detail {

void ReadyQueue::add_block() {
  ReadyBlock* block = acquire_block();
  block->refs = 1;  // the queue's
  block->used = 0;
  block->next = nullptr;
  if (tail_) {
    tail_->next = block;
  } else {
    head_ = block;
    head_offset_ = 0;
  }
  tail_ = block;
}

void ReadyQueue::undo_allocate(ReadyBlock* old_tail, std::size_t bytes) noexcept {
  if (tail_ == old_tail) {
    tail_->used -= static_cast<std::uint32_t>(bytes);
    return;
  }
  // allocate() added a block for this entry: unlink and drop it.
  ReadyBlock* added = tail_;
  tail_ = old_tail;
  if (old_tail) {
    old_tail->next = nullptr;
  } else {
    head_ = nullptr;
    head_offset_ = 0;
  }
  release_block(added);
}

void ReadyQueue::advance_block() noexcept {
  ReadyBlock* done = head_;
  DUET_ASSERT(done->next != nullptr);
  head_ = done->next;
  head_offset_ = 0;
  release_block(done);
}

void ReadyQueue::rewind() noexcept {
  // Empty: head_ == tail_, every entry consumed. Reuse the block in place
  // unless a Handle can still see one of its entries.
  DUET_ASSERT(head_ == tail_);
  if (head_->refs == 1) {
    head_->used = 0;
    head_offset_ = 0;
    return;
  }
  release_block(head_);
  head_ = tail_ = nullptr;
  head_offset_ = 0;
}

void ReadyQueue::clear() noexcept {
  while (count_ > 0) {
    ReadyEntry* entry = front();
    if (entry->state == EntryState::pending) {
      // The state changes first: a destructor run below may cancel this
      // very entry through a Handle, and must find nothing left to destroy.
      entry->state = EntryState::done;
      if (!entry->ops) {
        HandleNode* node = entry->node();
        node->callback.reset();  // free captures now, even if a TimerHandle lives on
        release_node(node);
      } else if (entry->ops->destroy) {
        entry->ops->destroy(entry->storage());
      }
    }
    pop();
  }
  if (head_) {
    release_block(head_);
    head_ = tail_ = nullptr;
    head_offset_ = 0;
  }
  set_read_context(nullptr);
  write_context_ = nullptr;
}

void ReadyQueue::take_marker(ReadyEntry* marker) noexcept {
  set_read_context(*static_cast<ContextMapNode**>(marker->storage()));  // the marker's reference
  head_offset_ += marker->size;
}

void ReadyQueue::set_read_context(ContextMapNode* context) noexcept {
  ContextMapNode* const old = std::exchange(read_context_, context);
  if (reader_ && reader_->borrowed) reader_->map = context;
  release(old);  // last: values' destructors may read variables
}

}  // namespace duet::detail
