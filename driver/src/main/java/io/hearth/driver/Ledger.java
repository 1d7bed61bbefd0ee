package io.hearth.driver;

import java.util.BitSet;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * What one session remembers of its statements (or of its jobs) so that a re-sent execute or
 * start_job never runs twice (protocol/PROTOCOL.md, "Reconnect and resynchronisation"): every id
 * it ever accepted, which of them finished, and the final updates of the last
 * {@link #kRetainedPerSession} that finished, as far as the driver's {@link Budget} has room for
 * them (the oldest final update of the whole driver is dropped first).
 *
 * <p>Ids are kept as bits in pages of 4096 (a BitSet each, keyed by id / 4096): ids 0..n cost
 * about n / 4 bytes (accepted and finished), ids far apart a page each, any long is an id.
 *
 * <p>Thread-safe: every method holds the budget's lock, which all ledgers of a driver share (an
 * eviction reaches into the ledger that holds the oldest update). Nothing is called while it is
 * held, so it nests inside any lock of the caller. No Spark here, so {@code LedgerCheck} tests
 * it on its own.
 *
 * @param <U> the final update kept: Message.StatementUpdate or Message.JobUpdate
 */
final class Ledger<U> {
  /** Final updates kept per session, per ledger (statements and jobs have one each). */
  static final int kRetainedPerSession = 1000;
  /** Bytes of final updates kept per driver, over all ledgers. */
  static final long kRetainedBytesPerDriver = 64L * 1024 * 1024;
  /** What a kept update costs besides its output or result (its envelope and fields). */
  static final long kUpdateOverheadBytes = 256;

  /** Where a re-sent id stands. */
  enum State {
    /** Never accepted: run it. */
    NEW,
    /** Accepted and not finished: queued or running. */
    OPEN,
    /** Finished: {@link #finalUpdate} has its final update unless it was dropped. */
    FINISHED
  }

  /** The driver-wide bound on kept final updates; one per driver, shared by its ledgers. */
  static final class Budget {
    private final long maxBytes;
    private long bytes; // guarded by this
    // Every kept update of the driver, oldest first; guarded by this.
    private final LinkedHashSet<Entry<?>> order = new LinkedHashSet<>();

    Budget(long maxBytes) {
      this.maxBytes = maxBytes;
    }

    /** The bytes the kept updates cost now. */
    synchronized long bytes() {
      return bytes;
    }

    /** Drops the driver's oldest updates until they fit. Called under this lock. */
    private void fit() {
      Iterator<Entry<?>> oldest = order.iterator();
      while (bytes > maxBytes && oldest.hasNext()) {
        Entry<?> e = oldest.next();
        oldest.remove();
        bytes -= e.bytes;
        e.ledger.retained.remove(e.id);
      }
    }
  }

  private static final class Entry<U> {
    final Ledger<U> ledger;
    final long id;
    final U update;
    final long bytes;

    Entry(Ledger<U> ledger, long id, U update, long bytes) {
      this.ledger = ledger;
      this.id = id;
      this.update = update;
      this.bytes = bytes;
    }
  }

  /** A set of longs as bits in pages of 4096. */
  private static final class IdSet {
    private static final int kPageShift = 12;
    private final Map<Long, BitSet> pages = new HashMap<>();

    /** Adds id; false if it was there. */
    boolean add(long id) {
      BitSet page = pages.computeIfAbsent(id >> kPageShift, k -> new BitSet(1 << kPageShift));
      int bit = (int) (id & ((1 << kPageShift) - 1));
      if (page.get(bit)) {
        return false;
      }
      page.set(bit);
      return true;
    }

    boolean contains(long id) {
      BitSet page = pages.get(id >> kPageShift);
      return page != null && page.get((int) (id & ((1 << kPageShift) - 1)));
    }

    int pages() {
      return pages.size();
    }
  }

  private final Budget budget;
  private final int maxRetained;
  // All guarded by budget.
  private final IdSet accepted = new IdSet();
  private final IdSet finished = new IdSet();
  private final LinkedHashMap<Long, Entry<U>> retained = new LinkedHashMap<>(); // oldest first
  private boolean closed;

  /** A session's ledger with the protocol's bound of kept updates. */
  Ledger(Budget budget) {
    this(budget, kRetainedPerSession);
  }

  Ledger(Budget budget, int maxRetained) {
    this.budget = budget;
    this.maxRetained = maxRetained;
  }

  /** Accepts id (it is then OPEN); false, changing nothing, if it was accepted before. */
  boolean accept(long id) {
    synchronized (budget) {
      return accepted.add(id);
    }
  }

  State state(long id) {
    synchronized (budget) {
      if (!accepted.contains(id)) {
        return State.NEW;
      }
      return finished.contains(id) ? State.FINISHED : State.OPEN;
    }
  }

  /**
   * Records id's final update (the frame sent, kept to be sent again as it was) and what keeping
   * it costs, in bytes. Keeping it may drop the oldest update of this ledger (beyond its bound)
   * and of the driver (beyond the budget); one larger than the whole budget is not kept. After
   * {@link #close} it only marks id finished.
   */
  void finish(long id, U update, long bytes) {
    synchronized (budget) {
      accepted.add(id);
      finished.add(id);
      if (closed) {
        return;
      }
      Entry<U> previous = retained.remove(id); // a second final update replaces the first
      if (previous != null) {
        budget.order.remove(previous);
        budget.bytes -= previous.bytes;
      }
      if (bytes > budget.maxBytes) {
        return; // it would only push everything else out, itself included
      }
      Entry<U> entry = new Entry<>(this, id, update, bytes);
      retained.put(id, entry);
      budget.order.add(entry);
      budget.bytes += bytes;
      if (retained.size() > maxRetained) {
        Iterator<Entry<U>> oldest = retained.values().iterator();
        Entry<U> e = oldest.next();
        oldest.remove();
        budget.order.remove(e);
        budget.bytes -= e.bytes;
      }
      budget.fit();
    }
  }

  /** id's final update as first sent, or null if it has none kept (not finished, or dropped). */
  U finalUpdate(long id) {
    synchronized (budget) {
      Entry<U> e = retained.get(id);
      return e == null ? null : e.update;
    }
  }

  /** How many final updates this ledger keeps now. */
  int retainedCount() {
    synchronized (budget) {
      return retained.size();
    }
  }

  /** How many pages of ids this ledger holds (for the check of its memory). */
  int idPages() {
    synchronized (budget) {
      return accepted.pages() + finished.pages();
    }
  }

  /** The session is gone: gives its kept updates' bytes back to the budget and keeps no more. */
  void close() {
    synchronized (budget) {
      closed = true;
      for (Entry<U> e : retained.values()) {
        budget.order.remove(e);
        budget.bytes -= e.bytes;
      }
      retained.clear();
    }
  }
}
