package io.hearth.driver;

import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Supplier;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * The agent's end of the driver channel: one DEALER socket connected to the server.
 *
 * <p>One thread ("hearth-channel") owns the DEALER socket. Other threads hand messages to
 * {@link #send}; they go through a queue and a wake-up frame on an inproc PUSH/PULL pair, so the
 * DEALER is only ever touched by its owner. The thread also keeps time: heartbeats, hello again
 * after three silent heartbeat intervals, and the idle timeout.
 *
 * <p>Until the server has welcomed the agent, outgoing messages wait in a bounded backlog (the
 * server would answer them with not_authenticated); the latest driver_state is re-sent after
 * every welcome, so a restarted server learns the driver's state. A driver_state's sessions are
 * filled in when the frame is written, so each one lists the sessions held at that moment.
 */
public final class Channel {
  /** What the channel hands to the rest of the agent; called on the channel thread. */
  public interface Listener {
    /** A decoded frame other than welcome, reject, heartbeat and error not_authenticated. */
    void onMessage(Message message);

    /** The channel gave up (reject, idle timeout); the agent should exit with this code. */
    void onFatal(String why, int exitCode);
  }

  private static final String kOutbox = "inproc://hearth-outbox";
  private static final long kDefaultHeartbeatMs = 2000;
  private static final int kMaxBacklog = 10_000;
  private static final int kPollMs = 100;

  private final ZContext context = new ZContext();
  private final String server;
  private final Supplier<Message.Hello> hello;
  private final Supplier<List<Long>> heldSessions;
  private final long idleTimeoutMs;
  private final Listener listener;
  private final ConcurrentLinkedQueue<Message> outbox = new ConcurrentLinkedQueue<>();
  private final ZMQ.Socket wakeSender;
  private final Thread thread;
  private volatile boolean stopping;
  private volatile long stopDeadline;

  // Owned by the channel thread.
  private boolean welcomed;
  private long heartbeatMs = kDefaultHeartbeatMs;
  private long lastReceived;
  private long lastHello;
  private long lastHeartbeatSent;
  private Message.DriverState driverState;
  private final ArrayDeque<Message> backlog = new ArrayDeque<>();

  /**
   * hello and heldSessions (the ids of the sessions the agent holds, for driver_state) are called
   * on the channel thread whenever a hello or a driver_state is written.
   */
  public Channel(String server, Supplier<Message.Hello> hello, Supplier<List<Long>> heldSessions,
      long idleTimeoutMs, Listener listener) {
    this.server = server;
    this.hello = hello;
    this.heldSessions = heldSessions;
    this.idleTimeoutMs = idleTimeoutMs;
    this.listener = listener;
    // The PULL end is bound here, before any sender can connect (inproc needs bind first).
    ZMQ.Socket pull = context.createSocket(SocketType.PULL);
    pull.setLinger(0);
    pull.bind(kOutbox);
    wakeSender = context.createSocket(SocketType.PUSH);
    wakeSender.setLinger(0);
    wakeSender.connect(kOutbox);
    thread = new Thread(() -> run(pull), "hearth-channel");
    thread.setDaemon(true);
  }

  public void start() {
    thread.start();
  }

  /** Queues a message for the server; never blocks. Callable from any thread. */
  public void send(Message message) {
    outbox.add(message);
    // ZeroMQ sockets are not thread-safe: the lock serialises the senders of the wake-up frame
    // (and gives the memory barrier ZeroMQ requires when a socket changes threads).
    synchronized (wakeSender) {
      wakeSender.send(new byte[0], ZMQ.DONTWAIT);
    }
  }

  /**
   * Sends what is queued (waiting for the welcome if the server has not answered the hello yet),
   * waits up to lingerMs for it to leave, and stops the thread. Used once, at exit, so that
   * driver_state stopping or error reaches the server.
   */
  public void flushAndStop(long lingerMs) throws InterruptedException {
    stopDeadline = System.currentTimeMillis() + lingerMs;
    stopping = true;
    synchronized (wakeSender) {
      wakeSender.send(new byte[0], ZMQ.DONTWAIT);
    }
    thread.join(lingerMs + 5000);
  }

  private void run(ZMQ.Socket pull) {
    ZMQ.Socket dealer = context.createSocket(SocketType.DEALER);
    dealer.setLinger(0);
    dealer.setRcvHWM(0);
    dealer.connect(server);
    ZMQ.Poller poller = context.createPoller(2);
    poller.register(dealer, ZMQ.Poller.POLLIN);
    poller.register(pull, ZMQ.Poller.POLLIN);
    long now = System.currentTimeMillis();
    lastReceived = now;
    sendHello(dealer, now);
    while (!(stopping && (welcomed || now >= stopDeadline))) {
      poller.poll(kPollMs);
      now = System.currentTimeMillis();
      if (poller.pollin(0)) {
        byte[] frame;
        while ((frame = dealer.recv(ZMQ.DONTWAIT)) != null) {
          lastReceived = now;
          receive(dealer, frame, now);
        }
      }
      if (poller.pollin(1)) {
        while (pull.recv(ZMQ.DONTWAIT) != null) {
          // wake-up frames only; the messages are in the outbox
        }
      }
      drainOutbox(dealer);
      tick(dealer, now);
    }
    drainOutbox(dealer);
    // Linger only now: at exit the last frames should leave; while running, never block on them.
    dealer.setLinger((int) Math.max(0, stopDeadline - System.currentTimeMillis()));
    poller.close();
    dealer.close();
  }

  private void receive(ZMQ.Socket dealer, byte[] frame, long now) {
    Message message;
    try {
      message = Codec.decode(frame);
    } catch (Codec.DecodeException e) {
      System.err.println("hearth: dropped undecodable frame from server: " + e.getMessage());
      return;
    }
    if (message instanceof Message.Welcome w) {
      System.err.println("hearth: welcomed by server (version " + w.version() + ", heartbeat "
          + w.heartbeatMs() + " ms)");
      welcomed = true;
      heartbeatMs = Math.max(10, w.heartbeatMs());
      lastHeartbeatSent = now;
      if (driverState != null) {
        write(dealer, driverState.withSessions(heldSessions.get()));
      }
      while (!backlog.isEmpty()) {
        write(dealer, backlog.poll());
      }
    } else if (message instanceof Message.Reject r) {
      listener.onFatal("server rejected the driver: " + r.reason(), 2);
    } else if (message instanceof Message.Error e && e.code().equals("not_authenticated")) {
      System.err.println("hearth: server says not_authenticated (" + e.message() + "), saying hello again");
      welcomed = false;
      sendHello(dealer, now);
    } else if (!(message instanceof Message.Heartbeat)) {
      listener.onMessage(message);
    }
  }

  private void drainOutbox(ZMQ.Socket dealer) {
    Message m;
    while ((m = outbox.poll()) != null) {
      if (m instanceof Message.DriverState d) {
        driverState = d;
        if (!welcomed) {
          continue; // sent after the welcome
        }
        m = d.withSessions(heldSessions.get());
      } else if (!welcomed) {
        if (backlog.size() >= kMaxBacklog) {
          System.err.println("hearth: backlog full, dropped " + m.getClass().getSimpleName());
        } else {
          backlog.add(m);
        }
        continue;
      }
      write(dealer, m);
    }
  }

  private void tick(ZMQ.Socket dealer, long now) {
    if (now - lastReceived >= idleTimeoutMs) {
      stopDeadline = 0;
      stopping = true;
      listener.onFatal("nothing heard from the server for " + idleTimeoutMs + " ms", 3);
      return;
    }
    if (now - lastReceived >= 3 * heartbeatMs && now - lastHello >= 3 * heartbeatMs) {
      System.err.println("hearth: server silent for " + (now - lastReceived) + " ms, saying hello again");
      welcomed = false;
      sendHello(dealer, now);
    }
    if (welcomed && now - lastHeartbeatSent >= heartbeatMs) {
      write(dealer, new Message.Heartbeat());
      lastHeartbeatSent = now;
    }
  }

  private void sendHello(ZMQ.Socket dealer, long now) {
    lastHello = now;
    write(dealer, hello.get());
  }

  private void write(ZMQ.Socket dealer, Message m) {
    byte[] frame = Codec.encode(m);
    if (frame.length > Codec.kMaxFrameBytes) {
      System.err.println("hearth: dropped " + m.getClass().getSimpleName() + " frame of "
          + frame.length + " bytes (limit " + Codec.kMaxFrameBytes + ")");
      return;
    }
    // DONTWAIT: a full pipe (server gone) must not stop the thread that keeps time.
    if (!dealer.send(frame, ZMQ.DONTWAIT)) {
      System.err.println("hearth: could not send " + m.getClass().getSimpleName() + " (queue full)");
    }
  }
}
