#pragma once

// The callback thread of a Client: runs user callbacks (on_event, on_update) and the completions
// that must follow them, one at a time, in the order they were pushed. Private to
// hearth::clients.
//
// Bounded: at most `capacity` droppable items wait; push() of a droppable item into a full queue
// returns false at once (the I/O thread must never block on a slow callback, or a callback that
// calls the Client would deadlock with it) and the caller resynchronises (see client.cpp).
// Items pushed as must_run (promise completions, one per waiting call, so bounded by the calls
// in flight) are always queued.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace hearth::clients::detail {

class CallbackQueue {
 public:
  explicit CallbackQueue(std::size_t capacity);
  ~CallbackQueue();  // stop()
  CallbackQueue(const CallbackQueue&) = delete;
  CallbackQueue& operator=(const CallbackQueue&) = delete;

  // Queues `item`; false when it was droppable and the queue was full (or stopped: then a
  // must_run item runs on the calling thread, so promises are never left unset).
  bool push(std::function<void()> item, bool must_run = false);
  // Droppable items waiting.
  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }
  // Runs what is queued, then ends and joins the thread. Called from the callback thread itself
  // (a callback destroying its Client) it detaches instead of joining itself.
  void stop();
  bool on_callback_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Item {
    std::function<void()> fn;
    bool must_run;
  };
  // Shared with the thread, so a callback thread that outlives its queue (detached) never touches
  // freed memory.
  struct Shared {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<Item> items;
    std::size_t droppable = 0;
    bool stopping = false;
  };
  static void run(std::shared_ptr<Shared> shared);

  const std::size_t capacity_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace hearth::clients::detail
