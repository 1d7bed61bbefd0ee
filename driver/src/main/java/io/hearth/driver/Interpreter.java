package io.hearth.driver;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** One language of a session. Created on first use; used only by the session's thread. */
interface Interpreter {
  /**
   * Runs one statement in the Spark job group jobGroup and returns Livy's output object
   * (status ok or error); errors of the code are outputs, not exceptions.
   */
  ObjectNode execute(long statementId, String jobGroup, String code);

  /** Ends the interpreter; callable from any thread, also while execute runs. */
  void close();
}
