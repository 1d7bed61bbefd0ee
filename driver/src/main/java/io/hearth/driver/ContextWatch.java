package io.hearth.driver;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import org.apache.spark.SparkContext;

/**
 * Notices that the driver's SparkContext, shared by all of its sessions, was stopped by
 * something other than the agent: Scala code ({@code spark.stop()}, {@code sc.stop()}), Python
 * code reaching the JVM through py4j ({@code sc._jsc.stop()}), or Spark itself after a fatal
 * error. Python's own stop() calls are guarded in the worker and never get here.
 *
 * <p>Polls {@link SparkContext#isStopped()} from a daemon thread rather than listening for
 * onApplicationEnd: isStopped() is set first thing in stop(), whatever stops the context, while
 * the listener event may be dropped by a full listener-bus queue and arrives on the bus's thread
 * while stop() waits for that bus to drain, the wrong place to start ending a driver.
 */
final class ContextWatch {
  static final long kPollMs = 500;
  /** Why the driver ends when the context stopped under it; for driver_state and the log. */
  static final String kStoppedReason = "the SparkContext was stopped by user code (spark.stop() or"
      + " sc.stop() in Scala, a JVM call through py4j such as sc._jsc.stop()) or by Spark itself;"
      + " no session of this driver can run Spark jobs any more";

  private ContextWatch() {}

  /**
   * Calls onStopped once, on the watch's own daemon thread, within about 500 ms of sc stopping
   * (at once if it is stopped already). Also when the agent stops the context itself: onStopped
   * decides whether that is expected. Not called once the JVM is exiting (System.exit runs
   * Spark's shutdown hook, which stops the context). Returns at once.
   */
  static void install(SparkContext sc, Runnable onStopped) {
    Thread watch = new Thread(() -> {
      try {
        while (!sc.isStopped()) {
          Thread.sleep(kPollMs); // poll step; isStopped() has no way to wait for it
        }
      } catch (InterruptedException e) {
        return;
      }
      if (jvmExiting()) {
        return;
      }
      System.err.println("hearth: " + kStoppedReason);
      try {
        onStopped.run();
      } catch (Throwable t) {
        System.err.println("hearth: handling the stopped SparkContext failed: " + t);
        t.printStackTrace();
      }
    }, "hearth-context-watch");
    watch.setDaemon(true);
    watch.start();
  }

  /**
   * The output of a statement during which the shared SparkContext stopped; interpreters return
   * it instead of the statement's own, which would hide why every later Spark call fails.
   */
  static ObjectNode stoppedOutput(long statementId) {
    return Outputs.error(statementId, "SparkContextStopped", "the SparkContext shared by all"
        + " sessions of this driver was stopped while this statement ran (spark.stop(), sc.stop()"
        + " or a JVM call that stops it); no session of this driver can run Spark jobs any more,"
        + " and the driver ends", List.of());
  }

  /** True once shutdown hooks run: a hook can no longer be added then. */
  private static boolean jvmExiting() {
    Thread probe = new Thread(() -> {});
    try {
      Runtime.getRuntime().addShutdownHook(probe);
      Runtime.getRuntime().removeShutdownHook(probe);
      return false;
    } catch (IllegalStateException e) {
      return true;
    }
  }
}
