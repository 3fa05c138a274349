#include "duet/run.hpp"

namespace duet::detail {

void cancel_all_tasks(Loop& loop) {
  std::vector<TaskRef> to_cancel = all_tasks(loop);
  if (to_cancel.empty()) return;
  for (TaskRef& t : to_cancel) t.cancel();
  // Run until every one of them is done (they may catch the cancellation
  // and take a while): a future released by the last of them.
  Future<void> all_done(loop);
  auto remaining = std::make_shared<std::size_t>(to_cancel.size());
  for (TaskRef& t : to_cancel) {
    HandleNode* node = acquire_node();
    node->callback.emplace([all_done, remaining]() mutable {
      if (--*remaining == 0 && !all_done.done()) all_done.set_result();
    });
    t.get()->add_callback_node(node);
  }
  loop.run_until_complete(all_done);
  for (TaskRef& t : to_cancel) {
    if (t.cancelled()) continue;
    if (std::exception_ptr e = t.get()->exception()) {
      ExceptionContext context;
      context.message = "unhandled exception during duet::run() shutdown";
      context.exception = e;
      context.handle = "<Task name='" + t.name() + "'>";
      loop.call_exception_handler(context);
    }
  }
}

}  // namespace duet::detail
