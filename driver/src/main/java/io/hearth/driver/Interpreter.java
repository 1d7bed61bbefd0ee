package io.hearth.driver;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/** One language of a session. Created on first use; execute runs only on the session's thread. */
interface Interpreter {
  /**
   * Runs one statement in the Spark job group jobGroup and returns Livy's output object
   * (status ok or error); errors of the code are outputs, not exceptions.
   */
  ObjectNode execute(long statementId, String jobGroup, String code);

  /**
   * Interrupts statement statementId, which is running or about to run; called once per cancel
   * from another thread under the session's lock (so it must not block). Cancelling its Spark
   * jobs is the session's business, not the interpreter's. By default the session thread is
   * interrupted: JVM interpreters run the user's code on it.
   */
  default void interrupt(long statementId, Thread sessionThread) {
    sessionThread.interrupt();
  }

  /**
   * Completion candidates for code with the cursor at a char offset; called on a completion
   * thread, also while execute runs. Returns within about timeoutMs, empty when there are none
   * or anything fails.
   */
  default List<String> complete(String code, int cursor, long timeoutMs) {
    return List.of();
  }

  /** Ends the interpreter; callable from any thread, also while execute runs. */
  void close();
}
