package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;

/**
 * The messages of the driver channel, one record per message type of protocol/PROTOCOL.md.
 * Optional fields are null when absent. Records hold only values; {@link Codec} checks them.
 */
public sealed interface Message {
  record Hello(String driverId, String secret, List<Long> versions, long pid, String sparkVersion)
      implements Message {
    // The record's default toString would print the secret into the driver log.
    @Override
    public String toString() {
      return "Hello[driverId=" + driverId + ", versions=" + versions + ", pid=" + pid
          + ", sparkVersion=" + sparkVersion + "]";
    }
  }

  record Welcome(long version, long heartbeatMs) implements Message {}

  record Reject(String reason) implements Message {}

  record Heartbeat() implements Message {}

  /**
   * state: ready, stopping or error. sessions: the ids of the sessions the agent holds, never
   * null; {@link Channel} fills them in when it writes the frame, so callers pass an empty list.
   */
  record DriverState(String state, String appId, String sparkUiUrl, String message,
      List<Long> sessions) implements Message {
    DriverState withSessions(List<Long> held) {
      return new DriverState(state, appId, sparkUiUrl, message, List.copyOf(held));
    }
  }

  /** kind: pyspark, spark, sql, sparkr or shared. */
  record OpenSession(long sessionId, String kind) implements Message {}

  /** state: starting, idle, busy, error or dead. */
  record SessionState(long sessionId, String state, String message) implements Message {}

  /** kind: pyspark, spark, sql or sparkr. */
  record Execute(long sessionId, long statementId, String kind, String code) implements Message {}

  /** state: running, available or cancelled; output is a JSON object or null. */
  record StatementUpdate(long sessionId, long statementId, String state, double progress,
      long started, long completed, JsonNode output) implements Message {}

  record CloseSession(long sessionId) implements Message {}

  record Shutdown() implements Message {}

  /** code: not_authenticated, unknown_session or bad_request. */
  record Error(String code, String message) implements Message {}

  /** Cancel a queued or running statement; answered by its final statement_update. */
  record CancelStatement(long sessionId, long statementId) implements Message {}

  /** Completion candidates for code at cursor in the interpreter of kind. */
  record Complete(long sessionId, long requestId, String kind, String code, long cursor)
      implements Message {}

  /** Make a jar, pyfile, file or archive available to the session. */
  record AddArtifact(long sessionId, long requestId, String kind, String uri) implements Message {}

  /** The answer to an AddArtifact; error is null on success. */
  record ArtifactAdded(long sessionId, long requestId, String error) implements Message {}

  /** The answer to a Complete with the same requestId. */
  record Completion(long sessionId, long requestId, List<String> candidates) implements Message {}

  /**
   * Run className as job jobId of the session; jar (null when absent) is added to the session
   * first. args and conf are never null (empty when the frame has none).
   */
  record StartJob(long sessionId, long jobId, String className, List<String> args,
      Map<String, String> conf, String jar) implements Message {}

  /**
   * state: queued, running, succeeded, failed or cancelled. result is any JSON value but null,
   * or null when there is none; error is null unless the job failed; traceback is never null
   * (empty when absent: an empty one is not encoded).
   */
  record JobUpdate(long sessionId, long jobId, String state, double progress, long started,
      long completed, JsonNode result, String error, List<String> traceback) implements Message {}

  /** Cancel a queued or running job; answered by its final job_update (cancelled). */
  record CancelJob(long sessionId, long jobId) implements Message {}
}
