// duet/shield.hpp — asyncio.shield.
//
//   int v = co_await duet::shield(task);
//
// is `co_await task` except that cancelling the awaiting task does not
// cancel `task`: the awaiter still gets CancelledError, the shielded work
// goes on. Cancelling `task` by other means still cancels the shield.
#pragma once

#include "duet/future.hpp"
#include "duet/gather.hpp"

namespace duet {

template <class A>
Future<detail::value_of_t<A>> shield(A&& awaitable) {
  using T = detail::value_of_t<A>;
  Future<T> inner = detail::ensure_future(std::forward<A>(awaitable));
  if (inner.done()) return inner;  // shortcut, as asyncio
  Future<T> outer(inner.get_loop());
  auto inner_id = inner.add_done_callback([outer](const Future<T>& in) mutable {
    if (outer.cancelled()) {
      if (!in.cancelled()) in.exception();  // mark retrieved
      return;
    }
    if (in.cancelled()) {
      outer.cancel();
    } else if (std::exception_ptr e = in.exception()) {
      outer.set_exception(e);
    } else if constexpr (std::is_void_v<T>) {
      outer.set_result();
    } else {
      outer.set_result(in.result());
    }
  });
  outer.add_done_callback([inner, inner_id](const Future<T>&) mutable {
    if (!inner.done()) inner.remove_done_callback(inner_id);
  });
  return outer;
}

}  // namespace duet
