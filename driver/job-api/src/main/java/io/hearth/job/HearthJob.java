package io.hearth.job;

/**
 * A job that Hearth runs inside a session's Spark driver: the compiled counterpart of a
 * statement, started through the server's job API (protocol message {@code start_job}).
 *
 * <p>Contract:
 * <ul>
 *   <li>The class must be public with a public no-argument constructor. The agent creates one
 *       instance per run and calls {@link #call} once, on a job thread of the agent, beside the
 *       session's statements and its other jobs (several jobs of one session, and so several
 *       instances of one class, may run at the same time).
 *   <li>The class is loaded by the session's own job class loader: the jars added to the session
 *       (and the job's own jar) on top of the agent's class loader, which provides this
 *       interface, Spark and the agent's libraries. That loader is the thread's context class
 *       loader during {@code call}. Two sessions may hold two versions of one class.
 *   <li>During {@code call} the session's SparkSession is the thread's active session, and Spark
 *       jobs submitted from the calling thread belong to the job's Spark job group
 *       ({@code hearth-<session>-job-<job>}, which cancelling the job cancels) and the session's
 *       FAIR scheduler pool. Spark jobs submitted from threads the job starts itself inherit
 *       these settings only if the threads are created during {@code call}.
 *   <li>The return value is the job's result: it is serialised to JSON with Jackson (a
 *       {@code Map}, {@code List}, array, {@code String}, number, {@code Boolean}, a bean with
 *       getters, a record, or {@code null} for no result). A result that Jackson cannot
 *       serialise, or whose JSON is larger than the protocol's frame limit (about 16 MiB), fails
 *       the job.
 *   <li>An exception thrown by {@code call} fails the job; its {@code ClassName: message} and
 *       stack trace are reported.
 *   <li>Cancellation: when the job is cancelled (or its session closed), its Spark jobs are
 *       cancelled, the calling thread is interrupted and {@link JobContext#isCancelled()} turns
 *       true. Code that loops or blocks outside Spark should check one of them and return or
 *       throw; the job ends {@code cancelled} whatever it then returns.
 *   <li>The job must not stop the SparkContext or the SparkSession (they are shared with the
 *       session's statements and with other sessions), nor call {@code System.exit}.
 * </ul>
 *
 * <p>A class that does not implement this interface can still be run as a job if it has a
 * {@code public static void main(String[])}: it is called with the job's arguments, and
 * {@code SparkSession.builder().getOrCreate()} inside it returns the session's SparkSession.
 * Such a job has no result.
 *
 * @param <T> the type of the job's result
 */
@FunctionalInterface
public interface HearthJob<T> {
  /**
   * Runs the job.
   *
   * @param context the session's Spark handles and the job's arguments and settings; valid only
   *     during this call
   * @return the job's result, serialised to JSON with Jackson; {@code null} for none
   * @throws Exception anything; it fails the job (or, after a cancel, the job ends cancelled)
   */
  T call(JobContext context) throws Exception;
}
