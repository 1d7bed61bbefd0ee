#include "callback_queue.hpp"

#include <exception>
#include <iostream>
#include <utility>

namespace hearth::clients::detail {

CallbackQueue::CallbackQueue(std::size_t capacity)
    : capacity_(capacity), shared_(std::make_shared<Shared>()), thread_(&CallbackQueue::run, shared_) {}

CallbackQueue::~CallbackQueue() { stop(); }

bool CallbackQueue::push(std::function<void()> item, bool must_run) {
  std::unique_lock lock(shared_->mutex);
  if (shared_->stopping) {
    lock.unlock();
    if (must_run) item();
    return false;
  }
  if (!must_run) {
    if (shared_->droppable >= capacity_) return false;
    ++shared_->droppable;
  }
  shared_->items.push_back(Item{std::move(item), must_run});
  shared_->wake.notify_one();
  return true;
}

std::size_t CallbackQueue::size() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->droppable;
}

void CallbackQueue::stop() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
    shared_->wake.notify_one();
  }
  if (!thread_.joinable()) return;
  if (on_callback_thread()) {
    thread_.detach();  // run() drains what is left and ends; it owns a reference to Shared
  } else {
    thread_.join();
  }
}

void CallbackQueue::run(std::shared_ptr<Shared> shared) {
  std::unique_lock lock(shared->mutex);
  while (true) {
    shared->wake.wait(lock, [&] { return shared->stopping || !shared->items.empty(); });
    if (shared->items.empty()) return;  // stopping and drained
    Item item = std::move(shared->items.front());
    shared->items.pop_front();
    if (!item.must_run) --shared->droppable;
    // Callbacks run unlocked: they may call the Client, which pushes here again.
    lock.unlock();
    try {
      item.fn();
    } catch (const std::exception& e) {
      std::cerr << "hearth-clients: a callback threw: " << e.what() << "\n";
    } catch (...) {
      std::cerr << "hearth-clients: a callback threw\n";
    }
    item.fn = nullptr;  // release captures before taking the lock again
    lock.lock();
  }
}

}  // namespace hearth::clients::detail
