package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.Writer;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import scala.tools.nsc.Settings;
import scala.tools.nsc.interpreter.CompletionCandidate;
import scala.tools.nsc.interpreter.IMain;
import scala.tools.nsc.interpreter.Results;
import scala.tools.nsc.interpreter.shell.Accumulator;
import scala.tools.nsc.interpreter.shell.CompletionResult;
import scala.tools.nsc.interpreter.shell.ReplCompletion;
import scala.tools.nsc.interpreter.shell.ReplReporterImpl;

/**
 * The spark (Scala) kind: a Scala 2.13 REPL (scala.tools.nsc.interpreter.IMain, as Spark's own
 * spark-shell and Livy use it) in the driver JVM, one per session, with {@code spark} (the
 * session's SparkSession) and {@code sc} bound and Spark's usual imports.
 *
 * <p>Class-based wrappers ({@code -Yrepl-class-based}) written to the directory of
 * {@code spark.repl.class.outputDir}, which the agent sets before the SparkContext exists, so that
 * executors load REPL classes (closures, case classes) through the driver's class server.
 * All sessions of a driver share that one directory; each interpreter therefore numbers its
 * wrapper packages ({@code $line<N>}) from its own block of a million, so the classes of two
 * sessions never collide. (The {@code $line} prefix itself must stay: Spark's ClosureCleaner
 * recognises REPL wrappers by it.)
 *
 * <p>Output as Livy's: the REPL's echo, e.g. {@code 1 + 2} gives {@code "val res0: Int = 3\n"}
 * (Scala 2.13's format: "val name: Type = value"; Livy on 2.11/2.12 showed "res0: Int = 3"),
 * plus whatever the code printed through Console, in order. A compile error gives ename "Error",
 * evalue its first line, traceback the other lines; an exception of the code gives ename the
 * exception's class, evalue its message, traceback the REPL's stack lines.
 *
 * <p>Jars added to the session (add_artifact) go on this REPL's class path: its own runtime
 * class loader and its compiler's class path ({@code IMain.addUrlsToClassPath}, what the REPL's
 * {@code :require} does; Livy's addJar does the same), when the REPL starts and before each
 * statement, so the statement after an add_artifact can import the jar's classes. Each session
 * has its own REPL and so its own loader: two sessions can use two versions of one jar.
 *
 * <p>Threads: execute runs on the session thread (the code runs on it too, so a cancel
 * interrupts that thread); complete runs on a completion thread beside it, using the REPL's
 * presentation compiler (a separate compiler instance) as Livy does; close from anywhere.
 *
 * <p>Not guarded: the code runs in the driver JVM, so {@code spark.stop()}, {@code sc.stop()},
 * {@code spark.close()}, {@code SparkSession.active.stop()}, {@code SparkContext.getOrCreate().stop()}
 * stop the SparkContext of all sessions of the driver, and {@code System.exit}, {@code sys.exit},
 * {@code Runtime.getRuntime.halt} end the driver. {@code spark} and {@code sc} cannot be bound to
 * safe stand-ins: a SparkContext subclass would start a second context, and a SparkSession
 * subclass (classic.SparkSession's constructor is private[sql]) gets a cloned SessionState, so the
 * session's Python and SQL would no longer see the temporary views made in Scala. A statement
 * during which the context stopped ends with {@link ContextWatch#stoppedOutput}; the agent's
 * {@link ContextWatch} notices the stop.
 */
final class ScalaInterpreter implements Interpreter {
  static final String kOutputDirKey = "spark.repl.class.outputDir";
  private static final int kLinesPerInterpreter = 1_000_000;
  private static final AtomicInteger kNextLineBlock = new AtomicInteger(0);
  private static final int kMaxOutputBytes = 8 * 1024 * 1024;
  private static final int kMaxCandidates = 1000;
  private static final Pattern kMagicLine = Pattern.compile("%(\\w*)(.*)");
  private static final Pattern kIdentifier = Pattern.compile("[A-Za-z_$][A-Za-z0-9_$]*");
  private static final String kMagicTerm = "__hearth_magic";

  private final Session session;
  private final OutputBuffer output = new OutputBuffer(kMaxOutputBytes);
  private final Object startLock = new Object();
  private volatile IMain intp; // set once started; guarded by startLock while starting
  private String startError; // guarded by startLock
  private volatile boolean closed;
  private volatile long cancelledStatement = -1;
  private final Set<String> appliedJars = new HashSet<>(); // guarded by itself

  ScalaInterpreter(Session session) {
    this.session = session;
  }

  /** A private temporary directory for REPL classes, removed when the JVM exits. */
  static Path createOutputDir() throws IOException {
    Path dir = Files.createTempDirectory("hearth-repl-");
    Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir), "hearth-repl-cleanup"));
    return dir;
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort at exit
    }
  }

  @Override
  public ObjectNode execute(long statementId, String jobGroup, String code) {
    IMain repl;
    try {
      repl = started();
    } catch (RuntimeException e) {
      return Outputs.error(statementId, "InterpreterError", "Fail to start interpreter:\n" + e.getMessage(),
          List.of());
    }
    applyJars(repl);
    SparkSession spark = session.sparkSession();
    SparkContext sc = spark.sparkContext();
    // Local properties belong to this (the session's) thread, on which the REPL runs the code.
    sc.setJobGroup(jobGroup, "Hearth statement " + jobGroup, true);
    sc.setLocalProperty("spark.scheduler.pool", session.pool());
    SparkSession.setActiveSession(spark);
    boolean contextWasStopped = sc.isStopped();
    try {
      ObjectNode out = executeLines(statementId, repl, code);
      return !contextWasStopped && sc.isStopped() ? ContextWatch.stoppedOutput(statementId) : out;
    } finally {
      sc.clearJobGroup();
    }
  }

  /**
   * Livy's way: the code line by line, a line joined with the next while the REPL says it is
   * incomplete; the first failing line ends the statement with its error. Line by line matters
   * beyond echo: in class-based mode a line's code runs inside its wrapper's constructor, so
   * e.g. a case class used by a Dataset must come from an earlier, completed line.
   */
  private ObjectNode executeLines(long statementId, IMain repl, String code) {
    StringBuilder text = new StringBuilder();
    ObjectNode magicData = null; // the data of the last line if it was a magic
    String pending = null;
    for (String line : code.strip().split("\n", -1)) {
      if (cancelledStatement == statementId) {
        return Outputs.error(statementId, "Error", "statement cancelled", List.of());
      }
      if (pending == null && line.isBlank()) {
        continue;
      }
      Matcher magic = pending == null ? kMagicLine.matcher(line.strip()) : null;
      if (magic != null && magic.matches()) {
        ObjectNode result = runMagic(statementId, repl, magic.group(1), magic.group(2).strip());
        if (!"ok".equals(result.path("status").asText())) {
          return result;
        }
        // As Livy: a magic's data replaces the text so far, and a later line's text replaces it.
        magicData = (ObjectNode) result.get("data");
        text.setLength(0);
        continue;
      }
      String source = pending == null ? line : pending + "\n" + line;
      output.reset();
      Results.Result result = interpret(repl, source);
      if (result instanceof Results.Success$) {
        if (magicData != null) {
          magicData = null;
          text.setLength(0);
        }
        text.append(output.text());
        pending = null;
      } else if (result instanceof Results.Incomplete$) {
        pending = source;
      } else if (output.text().isBlank()) {
        // Scala 2.13 answers a line with no code (only a comment) with a silent Error.
        pending = null;
      } else {
        return errorOutput(statementId, repl, output.text());
      }
    }
    if (pending != null) {
      // A trailing comment also reads as incomplete; in braces it compiles (and does nothing).
      output.reset();
      if (!(interpret(repl, "{\n" + pending + "\n}") instanceof Results.Success$)) {
        return Outputs.error(statementId, "Error", "incomplete statement", List.of());
      }
    }
    if (magicData != null) {
      ObjectNode out = Outputs.ok(statementId, "text/plain", TextNode.valueOf(""));
      out.set("data", magicData);
      return out;
    }
    return Outputs.ok(statementId, "text/plain", TextNode.valueOf(text.toString()));
  }

  /**
   * Livy's Scala magics, a line {@code %json <expr>} or {@code %table <expr>}: the value of a
   * name the REPL holds (Livy's valueOfTerm) or else of the expression, evaluated in the REPL as
   * {@code val __hearth_magic = <expr>}, as JSON ({@link MagicValues}); an RDD as its first 10
   * elements, a Dataset as its first 1000 rows. The statement output: ok with
   * {@code {"application/json": …}} or {@code {"application/vnd.livy.table.v1+json": …}}, or an
   * error: UnknownMagic (as the Python worker words it), NameError for a name that does not
   * exist (Livy's "Value x does not exist"), the REPL's error for an expression that does not
   * compile or throws, ValueError "Failed to convert value into a JSON value", TypeError "table
   * rows have different types" (Livy's).
   */
  private ObjectNode runMagic(long statementId, IMain repl, String name, String expr) {
    if (name.isEmpty()) {
      return Outputs.error(statementId, "UnknownMagic", "magic command not specified",
          List.of("UnknownMagic: magic command not specified\n"));
    }
    if (!name.equals("json") && !name.equals("table")) {
      String message = "unknown magic command '" + name + "'";
      return Outputs.error(statementId, "UnknownMagic", message, List.of("UnknownMagic: " + message + "\n"));
    }
    if (expr.isEmpty()) {
      return Outputs.error(statementId, "NameError", "Value  does not exist", List.of());
    }
    boolean isName = kIdentifier.matcher(expr).matches();
    Object value = null;
    boolean found = false;
    if (isName) {
      scala.Option<Object> term = withReplLoader(repl, () -> {
        try {
          return repl.valueOfTerm(expr);
        } catch (Throwable t) {
          return scala.Option.empty();
        }
      });
      if (term.isDefined()) {
        value = term.get();
        found = true;
      }
    }
    if (!found) {
      output.reset();
      Results.Result result = interpret(repl, "val " + kMagicTerm + " = " + expr);
      if (result instanceof Results.Incomplete$) {
        return Outputs.error(statementId, "Error", "incomplete statement", List.of());
      }
      if (!(result instanceof Results.Success$)) {
        if (isName && lastExceptionIsNot(repl, output.text())) {
          return Outputs.error(statementId, "NameError", "Value " + expr + " does not exist", List.of());
        }
        return errorOutput(statementId, repl, output.text());
      }
      scala.Option<Object> term = withReplLoader(repl, () -> repl.valueOfTerm(kMagicTerm));
      value = term.isDefined() ? term.get() : null;
    }
    Object shown = value;
    Object rows;
    try {
      rows = withReplLoader(repl, () -> MagicValues.materialize(shown));
    } catch (RuntimeException e) {
      return Outputs.error(statementId, e);
    }
    JsonNode json;
    try {
      json = MagicValues.toJson(rows);
    } catch (MagicValues.NotConvertible | RuntimeException | StackOverflowError e) {
      return Outputs.error(statementId, "ValueError", "Failed to convert value into a JSON value", List.of());
    }
    if (name.equals("json")) {
      return Outputs.ok(statementId, "application/json", json);
    }
    try {
      return Outputs.ok(statementId, "application/vnd.livy.table.v1+json", MagicValues.table(json));
    } catch (MagicValues.TypesDoNotMatch e) {
      return Outputs.error(statementId, "TypeError", e.getMessage(), List.of());
    }
  }

  /** True if the failed line's output is a compile error, not an exception the code threw. */
  private static boolean lastExceptionIsNot(IMain repl, String text) {
    Throwable thrown = lastException(repl);
    return thrown == null || !text.startsWith(thrown.getClass().getName());
  }

  private static <T> T withReplLoader(IMain repl, java.util.function.Supplier<T> body) {
    ClassLoader saved = Thread.currentThread().getContextClassLoader();
    try {
      Thread.currentThread().setContextClassLoader(repl.classLoader());
      return body.get();
    } finally {
      Thread.currentThread().setContextClassLoader(saved);
    }
  }

  /**
   * Puts the session's jars not yet on the REPL's class path on it: its runtime class loader
   * (this REPL's own, so two sessions can load two versions of a class) and its compiler's
   * class path, as the REPL's :require does. Runs on the session thread before a statement, or
   * while the REPL starts, never while the compiler compiles a statement. A jar that fails is
   * logged and skipped (add_artifact checked it is a readable jar).
   */
  private void applyJars(IMain repl) {
    synchronized (appliedJars) {
      for (URL jar : session.jars()) {
        if (!appliedJars.add(jar.toString())) {
          continue;
        }
        try {
          repl.addUrlsToClassPath(scala.jdk.javaapi.CollectionConverters.asScala(List.of(jar)).toList());
          System.err.println("hearth: session " + session.id() + ": " + jar + " on the Scala class path");
        } catch (Throwable t) {
          System.err.println("hearth: session " + session.id() + ": adding " + jar
              + " to the Scala REPL failed: " + t);
        }
      }
    }
  }

  @Override
  public void interrupt(long statementId, Thread sessionThread) {
    cancelledStatement = statementId; // no further line of it starts
    sessionThread.interrupt();
  }

  /** Runs code in the REPL with Console.out/err going to the statement's buffer. */
  private Results.Result interpret(IMain repl, String code) {
    PrintStream console = output.printStream();
    ClassLoader saved = Thread.currentThread().getContextClassLoader();
    try {
      // The REPL's loader as context loader: Spark resolves REPL classes (encoders of case
      // classes, deserialised closures) through it.
      Thread.currentThread().setContextClassLoader(repl.classLoader());
      return scala.Console$.MODULE$.withOut(console,
          () -> scala.Console$.MODULE$.withErr(console, () -> repl.interpret(code)));
    } finally {
      console.flush();
      Thread.currentThread().setContextClassLoader(saved);
    }
  }

  /**
   * A failed statement. An exception of the code has been bound to lastException by the REPL,
   * and the text starts with its toString; anything else is a compile error.
   */
  private ObjectNode errorOutput(long statementId, IMain repl, String text) {
    List<String> lines = new ArrayList<>(Arrays.asList(text.split("\n", -1)));
    while (!lines.isEmpty() && lines.get(lines.size() - 1).isEmpty()) {
      lines.remove(lines.size() - 1);
    }
    Throwable thrown = lastException(repl);
    if (thrown != null && !lines.isEmpty() && lines.get(0).startsWith(thrown.getClass().getName())) {
      String message = thrown.getMessage() != null ? thrown.getMessage() : "";
      return Outputs.error(statementId, thrown.getClass().getName(), message,
          withNewlines(lines.subList(1, lines.size())));
    }
    if (lines.isEmpty()) {
      return Outputs.error(statementId, "Error", "", List.of());
    }
    // Scala 2.13 prints a compile error as the source line, a caret line, then "error: …" and
    // the message's other lines; evalue is the "error:" line, traceback the rest in order.
    int at = 0;
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).strip().startsWith("error:")) {
        at = i;
        break;
      }
    }
    List<String> rest = new ArrayList<>(lines);
    String evalue = rest.remove(at).strip();
    return Outputs.error(statementId, "Error", evalue, withNewlines(rest));
  }

  private static List<String> withNewlines(List<String> lines) {
    return lines.stream().map(l -> l + "\n").toList();
  }

  /** The exception the last failed statement threw, if the REPL bound one; null otherwise. */
  private static Throwable lastException(IMain repl) {
    try {
      scala.Option<Object> value = repl.valueOfTerm("lastException");
      if (value.isDefined() && value.get() instanceof Throwable t) {
        return t;
      }
    } catch (Throwable t) {
      // not bound (no exception yet) or not readable
    }
    return null;
  }

  @Override
  public List<String> complete(String code, int cursor, long timeoutMs) {
    IMain repl;
    try {
      repl = started();
    } catch (RuntimeException e) {
      return List.of();
    }
    try {
      CompletionResult result = new ReplCompletion(repl, new Accumulator()).complete(code, cursor, true);
      TreeSet<String> names = new TreeSet<>();
      scala.collection.Iterator<CompletionCandidate> it = result.candidates().iterator();
      while (it.hasNext() && names.size() < kMaxCandidates) {
        String name = it.next().name();
        if (!name.isEmpty()) {
          names.add(name);
        }
      }
      return List.copyOf(names);
    } catch (Throwable t) {
      System.err.println("hearth: session " + session.id() + ": Scala completion failed: " + t);
      return List.of();
    }
  }

  @Override
  public void close() {
    closed = true;
    IMain repl = intp;
    if (repl != null) {
      try {
        repl.close();
      } catch (Throwable t) {
        System.err.println("hearth: session " + session.id() + ": closing the Scala REPL failed: " + t);
      }
    }
  }

  /** The REPL, created on first use (by a statement or a completion); throws if it cannot start. */
  private IMain started() {
    synchronized (startLock) {
      if (intp != null) {
        return intp;
      }
      if (startError != null) {
        throw new IllegalStateException(startError);
      }
      if (closed) {
        throw new IllegalStateException("session closed");
      }
      try {
        intp = start();
        return intp;
      } catch (Throwable t) {
        System.err.println("hearth: session " + session.id() + ": the Scala REPL did not start");
        t.printStackTrace();
        startError = t + (output.text().isEmpty() ? "" : "\n" + output.text());
        throw new IllegalStateException(startError);
      }
    }
  }

  private IMain start() {
    SparkSession spark = session.sparkSession();
    scala.Option<String> dir = spark.sparkContext().getConf().getOption(kOutputDirKey);
    if (dir.isEmpty()) {
      throw new IllegalStateException(kOutputDirKey + " is not set; executors could not load REPL classes");
    }
    System.err.println("hearth: session " + session.id() + ": starting the Scala REPL (classes in "
        + dir.get() + ")");
    Settings settings = new Settings();
    List<String> args = List.of("-Yrepl-class-based", "-Yrepl-outdir", dir.get(), "-usejavacp");
    scala.Tuple2<Object, scala.collection.immutable.List<String>> parsed = settings.processArguments(
        scala.jdk.javaapi.CollectionConverters.asScala(args).toList(), true);
    if (!(Boolean) parsed._1()) {
      throw new IllegalStateException("bad REPL settings " + args);
    }
    output.reset();
    PrintWriter reporterOut = new PrintWriter(output.writer(), true);
    IMain repl = new IMain(settings, new ReplReporterImpl(settings, reporterOut));
    // Each interpreter's wrappers live in their own packages ($line<block*1e6+n>): all sessions
    // write to, and executors load from, one directory.
    int block = kNextLineBlock.incrementAndGet();
    repl.naming().scala$tools$nsc$interpreter$Naming$$_freshLineId_$eq(block * kLinesPerInterpreter);
    ClassLoader saved = Thread.currentThread().getContextClassLoader();
    try {
      if (!repl.initializeCompiler()) {
        throw new IllegalStateException("the Scala compiler did not initialise: " + output.text());
      }
      Thread.currentThread().setContextClassLoader(repl.classLoader());
      List<String> modifiers = List.of("@transient");
      scala.collection.immutable.List<String> mods =
          scala.jdk.javaapi.CollectionConverters.asScala(modifiers).toList();
      bindQuietly(repl, "spark", "org.apache.spark.sql.SparkSession", spark, mods);
      bindQuietly(repl, "sc", "org.apache.spark.SparkContext", spark.sparkContext(), mods);
      for (String line : List.of("import org.apache.spark.SparkContext._", "import spark.implicits._",
          "import spark.sql", "import org.apache.spark.sql.functions._")) {
        output.reset();
        Results.Result r = repl.interpret(line, true);
        if (!(r instanceof Results.Success$)) {
          throw new IllegalStateException("'" + line + "' failed: " + output.text());
        }
      }
      // The jars the session got before its REPL existed; only now, as the REPL's runtime
      // class loader is made by its first statement.
      applyJars(repl);
    } finally {
      Thread.currentThread().setContextClassLoader(saved);
      output.reset();
    }
    return repl;
  }

  private void bindQuietly(IMain repl, String name, String type, Object value,
      scala.collection.immutable.List<String> modifiers) {
    output.reset();
    Results.Result r = repl.bind(name, type, value, modifiers);
    if (!(r instanceof Results.Success$)) {
      throw new IllegalStateException("binding " + name + " failed: " + output.text());
    }
  }

  /**
   * The statement's output: REPL messages (through a Writer) and the code's Console output
   * (through a PrintStream) land in one byte buffer in the order they are written. Bounded;
   * beyond the bound output is dropped and a note added.
   */
  private static final class OutputBuffer extends OutputStream {
    private final int limit;
    private byte[] bytes = new byte[4096]; // guarded by this
    private int size; // guarded by this
    private boolean truncated; // guarded by this

    OutputBuffer(int limit) {
      this.limit = limit;
    }

    synchronized void reset() {
      size = 0;
      truncated = false;
      if (bytes.length > 1 << 20) {
        bytes = new byte[4096];
      }
    }

    synchronized String text() {
      String s = new String(bytes, 0, size, StandardCharsets.UTF_8);
      return truncated ? s + "\n[output truncated]\n" : s;
    }

    @Override
    public synchronized void write(int b) {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
      int room = limit - size;
      if (len > room) {
        truncated = true;
        len = Math.max(0, room);
      }
      if (size + len > bytes.length) {
        bytes = Arrays.copyOf(bytes, Math.min(limit, Math.max(size + len, bytes.length * 2)));
      }
      System.arraycopy(b, off, bytes, size, len);
      size += len;
    }

    PrintStream printStream() {
      return new PrintStream(this, true, StandardCharsets.UTF_8);
    }

    /** An unbuffered Writer into this buffer, so messages keep their order with the code's output. */
    Writer writer() {
      OutputBuffer sink = this;
      return new Writer() {
        @Override
        public void write(char[] cbuf, int off, int len) {
          byte[] encoded = new String(cbuf, off, len).getBytes(StandardCharsets.UTF_8);
          sink.write(encoded, 0, encoded.length);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };
    }
  }
}
