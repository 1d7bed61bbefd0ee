package io.hearth.job;

import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * What a {@link HearthJob} gets from the agent: the session's Spark handles and the job's
 * arguments and settings, as sent in the {@code start_job} message.
 *
 * <p>Every method may be called from any thread while {@link HearthJob#call} runs; the
 * returned collections are unmodifiable.
 */
public interface JobContext {
  /**
   * The session's SparkSession: the same object the session's statements use (its temporary
   * views, UDFs and SQL settings are shared with them and with the session's other jobs). Do
   * not stop it.
   */
  SparkSession spark();

  /**
   * The driver's SparkContext, wrapped for Java. It is shared by every session of the driver:
   * do not stop or close it (so do not use it in try-with-resources).
   */
  JavaSparkContext sc();

  /** The job's own settings ({@code start_job.conf}); not applied to Spark. Never null. */
  Map<String, String> conf();

  /** The job's arguments ({@code start_job.args}). Never null. */
  List<String> args();

  /** The job's id, unique within its session (chosen by the server, from 0). */
  long jobId();

  /** The id of the session the job runs in (the same as in the REST API). */
  long sessionId();

  /**
   * True once the job was asked to stop (a cancel, or its session closing). Its Spark jobs are
   * then cancelled and its thread interrupted too; long computations outside Spark should poll
   * this and return early. Never turns false again.
   */
  boolean isCancelled();
}
