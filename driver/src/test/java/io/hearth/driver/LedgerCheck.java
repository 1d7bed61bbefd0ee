package io.hearth.driver;

import java.util.ArrayList;
import java.util.List;

/**
 * Checks {@link Ledger}, the bookkeeping behind idempotent execute and start_job
 * (protocol/PROTOCOL.md, "Reconnect and resynchronisation"): a re-sent id is told apart as open
 * (queued or running), finished with its final update kept, or finished with it dropped; the
 * per-session bound of 1000 kept updates and the driver's byte bound (oldest dropped first,
 * across sessions); ids far apart; closing a session's ledger.
 *
 * <p>Usage: LedgerCheck. Exits 1 when a check fails.
 */
public final class LedgerCheck {
  private static final List<String> failures = new ArrayList<>();
  private static int checks;

  public static void main(String[] args) throws Exception {
    duplicatesOfOpenFinishedAndDroppedIds();
    keepsTheLastThousandPerSession();
    keepsAtMostTheBudgetOfBytesOldestDroppedFirst();
    closingASessionGivesItsBytesBack();
    idsFarApartCostAPageEach();
    concurrentSessionsKeepTheBudgetExact();
    System.out.println("driver.ledger: " + checks + " checks, " + failures.size() + " failed");
    failures.forEach(f -> System.out.println("FAIL " + f));
    System.exit(failures.isEmpty() ? 0 : 1);
  }

  private static Message.StatementUpdate available(long statementId) {
    return new Message.StatementUpdate(7, statementId, "available", 1.0, 100 + statementId,
        200 + statementId, Outputs.ok(statementId, "text/plain",
            com.fasterxml.jackson.databind.node.TextNode.valueOf("out " + statementId)));
  }

  private static void duplicatesOfOpenFinishedAndDroppedIds() {
    Ledger<Message.StatementUpdate> ledger = new Ledger<>(new Ledger.Budget(1 << 20), 2);
    check(ledger.state(0) == Ledger.State.NEW, "an id never seen is NEW");
    check(ledger.accept(0), "the first execute of an id is accepted");
    check(!ledger.accept(0), "a re-sent execute of a queued id is not accepted again");
    check(ledger.state(0) == Ledger.State.OPEN, "a queued or running id is OPEN");
    check(ledger.finalUpdate(0) == null, "an open id has no final update");

    Message.StatementUpdate first = available(0);
    ledger.finish(0, first, 300);
    check(ledger.state(0) == Ledger.State.FINISHED, "a finished id is FINISHED");
    check(ledger.finalUpdate(0) == first, "a finished id keeps its final update as sent");
    check(!ledger.accept(0), "a finished id is never accepted again");
    check(ledger.finalUpdate(0) == first, "a re-sent execute does not change the kept update");

    // Two more finish: the bound of 2 drops id 0's update, but 0 stays FINISHED (answered with
    // a lost result, never run again).
    for (long id = 1; id <= 2; id++) {
      check(ledger.accept(id), "id " + id + " accepted");
      ledger.finish(id, available(id), 300);
    }
    check(ledger.state(0) == Ledger.State.FINISHED && ledger.finalUpdate(0) == null,
        "a dropped final update leaves the id FINISHED without an update");
    check(!ledger.accept(0), "a dropped id is never accepted again");
    check(ledger.finalUpdate(1) != null && ledger.finalUpdate(2) != null, "the newest are kept");
    check(ledger.state(3) == Ledger.State.NEW, "the next id is NEW");
  }

  private static void keepsTheLastThousandPerSession() {
    Ledger.Budget budget = new Ledger.Budget(Ledger.kRetainedBytesPerDriver);
    Ledger<Message.StatementUpdate> ledger = new Ledger<>(budget);
    Ledger<Message.StatementUpdate> other = new Ledger<>(budget);
    other.accept(0);
    other.finish(0, available(0), 300);
    int n = 1500;
    for (long id = 0; id < n; id++) {
      ledger.accept(id);
      ledger.finish(id, available(id), 300);
    }
    check(Ledger.kRetainedPerSession == 1000, "the protocol's bound is 1000 per session");
    check(ledger.retainedCount() == 1000, "kept " + ledger.retainedCount() + " of " + n + ", not 1000");
    check(ledger.finalUpdate(n - 1001) == null, "the 1001st newest is dropped");
    check(ledger.finalUpdate(n - 1000) != null, "the 1000th newest is kept");
    check(ledger.finalUpdate(n - 1000).statementId() == n - 1000, "the kept update is its own");
    check(ledger.state(0) == Ledger.State.FINISHED, "the oldest is still known finished");
    check(other.finalUpdate(0) != null, "one session's bound does not drop another's updates");
    check(budget.bytes() == 1001 * 300L, "the budget counts what is kept: " + budget.bytes());
  }

  private static void keepsAtMostTheBudgetOfBytesOldestDroppedFirst() {
    Ledger.Budget budget = new Ledger.Budget(10_000);
    Ledger<Message.StatementUpdate> a = new Ledger<>(budget);
    Ledger<Message.StatementUpdate> b = new Ledger<>(budget);
    // a:0 a:1 b:0 b:1 a:2 ... each 1000 bytes: at most 10 kept, the oldest of the driver dropped.
    List<long[]> order = new ArrayList<>();
    for (long id = 0; id < 8; id++) {
      a.accept(id);
      a.finish(id, available(id), 1000);
      order.add(new long[] {0, id});
      b.accept(id);
      b.finish(id, available(id), 1000);
      order.add(new long[] {1, id});
      check(budget.bytes() <= 10_000, "over the budget: " + budget.bytes());
    }
    check(budget.bytes() == 10_000, "the budget is used up to its bound: " + budget.bytes());
    check(a.retainedCount() + b.retainedCount() == 10, "kept " + (a.retainedCount() + b.retainedCount()));
    for (int i = 0; i < order.size(); i++) {
      Ledger<Message.StatementUpdate> l = order.get(i)[0] == 0 ? a : b;
      long id = order.get(i)[1];
      boolean kept = l.finalUpdate(id) != null;
      check(kept == (i >= order.size() - 10), (order.get(i)[0] == 0 ? "a:" : "b:") + id
          + (kept ? " kept, but it is among the oldest" : " dropped, but it is among the newest"));
      check(l.state(id) == Ledger.State.FINISHED, "a dropped id stays FINISHED");
    }
    // An update larger than the whole budget is not kept, and drops nothing else.
    a.accept(100);
    a.finish(100, available(100), 10_001);
    check(a.finalUpdate(100) == null, "an update over the whole budget is not kept");
    check(budget.bytes() <= 10_000, "over the budget after a huge update: " + budget.bytes());
    // A second final update for one id replaces the first in the count.
    long before = budget.bytes();
    b.finish(7, available(7), 500);
    check(budget.bytes() == before - 500, "a replaced update is counted once: " + budget.bytes());
  }

  private static void closingASessionGivesItsBytesBack() {
    Ledger.Budget budget = new Ledger.Budget(1 << 20);
    Ledger<Message.StatementUpdate> closing = new Ledger<>(budget);
    Ledger<Message.StatementUpdate> staying = new Ledger<>(budget);
    for (long id = 0; id < 5; id++) {
      closing.accept(id);
      closing.finish(id, available(id), 1000);
    }
    staying.accept(0);
    staying.finish(0, available(0), 700);
    closing.close();
    check(budget.bytes() == 700, "a closed ledger's bytes are given back: " + budget.bytes());
    check(closing.retainedCount() == 0, "a closed ledger keeps nothing");
    closing.accept(9);
    closing.finish(9, available(9), 1000); // a statement that ended after the close
    check(closing.retainedCount() == 0 && budget.bytes() == 700, "a closed ledger keeps no more");
    check(staying.finalUpdate(0) != null, "other sessions keep theirs");
  }

  private static void idsFarApartCostAPageEach() {
    Ledger<Message.StatementUpdate> ledger = new Ledger<>(new Ledger.Budget(1 << 20));
    long[] ids = {0, 4095, 4096, 1_000_000, 1L << 40, Long.MAX_VALUE, -1, -4097, Long.MIN_VALUE};
    for (long id : ids) {
      check(ledger.accept(id), "id " + id + " accepted");
    }
    for (long id : ids) {
      check(!ledger.accept(id), "id " + id + " accepted twice");
      check(ledger.state(id) == Ledger.State.OPEN, "id " + id + " not OPEN");
    }
    for (long id : new long[] {1, 4094, 4097, 999_999, 1_000_001, (1L << 40) + 1, Long.MAX_VALUE - 1,
        -2, -4096, Long.MIN_VALUE + 1}) {
      check(ledger.state(id) == Ledger.State.NEW, "id " + id + " is NEW though never accepted");
    }
    // 0, 4095 | 4096 | 1e6 | 2^40 | MAX | -1 | -4097 | MIN: one page of 4096 ids each.
    check(ledger.idPages() == 8, "ids far apart take " + ledger.idPages() + " pages, not 8");
    ledger.finish(1L << 40, available(1), 300);
    check(ledger.state(1L << 40) == Ledger.State.FINISHED, "a far id finishes");
    check(ledger.idPages() == 9, "its finished mark takes one more page: " + ledger.idPages());

    // A long session's ids 0..n cost about n / 8 bytes per set: 25 pages for 100 000 ids.
    Ledger<Message.StatementUpdate> dense = new Ledger<>(new Ledger.Budget(1 << 20));
    for (long id = 0; id < 100_000; id++) {
      dense.accept(id);
    }
    check(dense.idPages() == 25, "100 000 ids take " + dense.idPages() + " pages, not 25");
    check(dense.state(99_999) == Ledger.State.OPEN && dense.state(100_000) == Ledger.State.NEW,
        "dense ids are told apart at the edge");
  }

  private static void concurrentSessionsKeepTheBudgetExact() throws InterruptedException {
    Ledger.Budget budget = new Ledger.Budget(50_000);
    List<Ledger<Message.StatementUpdate>> ledgers = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      Ledger<Message.StatementUpdate> ledger = new Ledger<>(budget, 100);
      ledgers.add(ledger);
      threads.add(new Thread(() -> {
        for (long id = 0; id < 5000; id++) {
          ledger.accept(id);
          ledger.finish(id, available(id), 100 + id % 7);
          ledger.finalUpdate(id / 2);
        }
      }));
    }
    threads.forEach(Thread::start);
    for (Thread thread : threads) {
      thread.join();
    }
    long kept = 0;
    for (Ledger<Message.StatementUpdate> ledger : ledgers) {
      check(ledger.retainedCount() <= 100, "a ledger over its bound: " + ledger.retainedCount());
      for (long id = 0; id < 5000; id++) {
        if (ledger.finalUpdate(id) != null) {
          kept += 100 + id % 7;
        }
      }
    }
    check(kept == budget.bytes(), "the budget counts " + budget.bytes() + " bytes, kept are " + kept);
    check(budget.bytes() <= 50_000, "over the budget: " + budget.bytes());
  }

  private static void check(boolean ok, String what) {
    checks++;
    if (!ok) {
      failures.add(what);
    }
  }
}
