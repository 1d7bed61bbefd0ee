package io.hearth.driver;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.jar.JarFile;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkFiles;
import org.apache.spark.util.Utils;

/**
 * add_artifact's work on the SparkContext: {@code addJar}, {@code addFile}, {@code addArchive},
 * plus what a session needs locally (the jar's local copy for its Scala REPL, the directory or
 * package a pyfile puts on its Python path).
 *
 * <p>Spark's {@code addJar} and {@code addFile} are global to the SparkContext: every executor
 * gets every session's jars and files (jars on one executor class loader, so when two sessions
 * add two versions of a class, executors load whichever comes first). Only the driver side is
 * per session: each session's Scala REPL has its own class loader and compiler class path.
 */
final class Artifacts {
  /** What a pyfile adds to a session's Python: a path for sys.path, and for a package (zip,
   *  egg, jar, whl) its file name, which executors' Python workers put on their path too. */
  record PythonPath(String path, String include) {}

  // The local jars this agent handed to Spark's file server, by file name. The file server
  // serves one file per name: a second jar of the same name from another path is refused (and
  // addJar only logs that), so such a jar is handed over as a copy with a name of its own.
  private static final Map<String, Path> kServedJars = new HashMap<>(); // guarded by itself
  private static final AtomicLong kCopies = new AtomicLong();
  private static final Object kSparkAddLock = new Object();

  private Artifacts() {}

  /**
   * sc.addJar(uri) and the jar's local file on the driver (for the session's class loader): a
   * {@code file:}, {@code local:} or scheme-less URI names it; any other is fetched (as
   * executors fetch it) into a temporary directory first. Throws when the jar is missing or is
   * not a jar, or Spark refused it.
   */
  static URL addJar(SparkContext sc, long sessionId, String uri) throws Exception {
    URI u = parse(uri);
    String scheme = u.getScheme();
    if (scheme == null || scheme.equals("file")) {
      Path file = localFile(u);
      checkJar(file, uri);
      String name = file.getFileName().toString();
      synchronized (kServedJars) {
        Path owner = kServedJars.get(name);
        Path served = (owner == null ? isServed(sc, name) : !owner.equals(file))
            ? copyWithOwnName(file, sessionId) : file;
        addToSpark(sc, () -> sc.addJar(served.toUri().toString()));
        String servedName = served.getFileName().toString();
        if (!isServed(sc, servedName)) {
          throw new IllegalStateException("Spark did not add the jar " + uri + " (see the driver log)");
        }
        kServedJars.putIfAbsent(servedName, served);
      }
      return file.toUri().toURL();
    }
    if (scheme.equals("local")) { // present at this path on every node, the driver included
      Path file = localFile(u);
      checkJar(file, uri);
      addToSpark(sc, () -> sc.addJar(uri));
      return file.toUri().toURL();
    }
    Path dir = Files.createTempDirectory("hearth-jar-s" + sessionId + "-");
    dir.toFile().deleteOnExit();
    File local = Utils.fetchFile(uri, dir.toFile(), sc.getConf(), sc.hadoopConfiguration(),
        System.currentTimeMillis(), false, false);
    local.deleteOnExit();
    checkJar(local.toPath(), uri);
    addToSpark(sc, () -> sc.addJar(uri));
    return local.toURI().toURL();
  }

  /**
   * sc.addFile(uri) of a pyfile and what goes on the session's sys.path: a local file's own
   * directory (a .py) or the file itself (a package); a remote file's copy in the driver's
   * SparkFiles directory, which addFile fetched.
   */
  static PythonPath addPyFile(SparkContext sc, String uri) throws Exception {
    URI u = resolve(uri);
    String scheme = u.getScheme();
    boolean local = scheme == null || scheme.equals("file") || scheme.equals("local");
    if (local) {
      Path file = localFile(u);
      if (!Files.isRegularFile(file)) {
        throw new FileNotFoundException("pyfile " + file + " does not exist");
      }
    }
    addToSpark(sc, () -> sc.addFile(uri));
    String name = fileName(u);
    Path file = local ? localFile(u) : Path.of(SparkFiles.get(name));
    if (!Files.isRegularFile(file)) {
      throw new FileNotFoundException("pyfile " + uri + " is not on the driver at " + file);
    }
    String lower = name.toLowerCase(Locale.ROOT);
    boolean pkg = lower.endsWith(".zip") || lower.endsWith(".egg") || lower.endsWith(".jar")
        || lower.endsWith(".whl");
    return pkg ? new PythonPath(file.toString(), name) : new PythonPath(file.getParent().toString(), null);
  }

  /** sc.addFile(uri) (kind file); see {@link #addToSpark}. */
  static void addFile(SparkContext sc, String uri) throws Exception {
    checkLocal(uri);
    addToSpark(sc, () -> sc.addFile(uri));
  }

  /** sc.addArchive(uri) (kind archive); see {@link #addToSpark}. */
  static void addArchive(SparkContext sc, String uri) throws Exception {
    checkLocal(uri);
    addToSpark(sc, () -> sc.addArchive(uri));
  }

  /** A local file's absence as a plain error before Spark sees it. */
  private static void checkLocal(String uri) throws FileNotFoundException {
    URI u = resolve(uri);
    String scheme = u.getScheme();
    if (scheme == null || scheme.equals("file")) {
      Path file = localFile(u);
      if (!Files.isRegularFile(file)) {
        throw new FileNotFoundException(file + " does not exist");
      }
    }
  }

  /**
   * Runs one of Spark's add calls. Spark registers an artifact before it fetches it to the
   * driver: a fetch that fails (a remote URI that is missing) would leave it registered, and
   * every later task would fail fetching it. So what a failing call registered is removed
   * again. One add at a time (of all sessions), so that the entries it made are known.
   */
  private static void addToSpark(SparkContext sc, SparkAdd add) throws Exception {
    synchronized (kSparkAddLock) {
      java.util.Set<String> files = keys(sc.addedFiles());
      java.util.Set<String> jars = keys(sc.addedJars());
      java.util.Set<String> archives = keys(sc.addedArchives());
      try {
        add.run();
      } catch (Throwable e) { // Scala throws checked exceptions (FileNotFoundException) too
        removeNew(sc.addedFiles(), files);
        removeNew(sc.addedJars(), jars);
        removeNew(sc.addedArchives(), archives);
        throw e;
      }
    }
  }

  /** One of SparkContext's add calls. */
  @FunctionalInterface
  private interface SparkAdd {
    void run() throws Exception;
  }

  private static java.util.Set<String> keys(
      scala.collection.concurrent.Map<String, scala.collection.concurrent.Map<String, Object>> byState) {
    java.util.Set<String> keys = new java.util.HashSet<>();
    scala.collection.Iterator<scala.Tuple2<String, scala.collection.concurrent.Map<String, Object>>> it =
        byState.iterator();
    while (it.hasNext()) {
      scala.Tuple2<String, scala.collection.concurrent.Map<String, Object>> state = it.next();
      scala.collection.Iterator<String> names = state._2().keysIterator();
      while (names.hasNext()) {
        keys.add(state._1() + "\0" + names.next());
      }
    }
    return keys;
  }

  private static void removeNew(
      scala.collection.concurrent.Map<String, scala.collection.concurrent.Map<String, Object>> byState,
      java.util.Set<String> before) {
    scala.collection.Iterator<scala.Tuple2<String, scala.collection.concurrent.Map<String, Object>>> it =
        byState.iterator();
    while (it.hasNext()) {
      scala.Tuple2<String, scala.collection.concurrent.Map<String, Object>> state = it.next();
      for (String name : scala.jdk.javaapi.CollectionConverters.asJava(state._2().keys())) {
        if (!before.contains(state._1() + "\0" + name)) {
          state._2().remove(name);
          System.err.println("hearth: unregistered " + name + " after its failed add");
        }
      }
    }
  }

  /** A URI as Spark's addJar reads it (a plain path has no scheme; spaces are allowed). */
  private static URI parse(String uri) {
    if (uri.isBlank()) {
      throw new IllegalArgumentException("empty uri");
    }
    return new org.apache.hadoop.fs.Path(uri).toUri();
  }

  /** A URI as Spark's addFile and addArchive read it (a #fragment names an archive's directory). */
  private static URI resolve(String uri) {
    if (uri.isBlank()) {
      throw new IllegalArgumentException("empty uri");
    }
    return Utils.resolveURI(uri);
  }

  private static Path localFile(URI u) {
    if (u.getPath() == null || u.getPath().isEmpty()) {
      throw new IllegalArgumentException("no path in " + u);
    }
    return Path.of(u.getPath()).toAbsolutePath().normalize();
  }

  private static String fileName(URI u) {
    String path = u.getPath();
    String name = path == null ? "" : path.substring(path.lastIndexOf('/') + 1);
    if (name.isEmpty()) {
      throw new IllegalArgumentException("no file name in " + u);
    }
    return name;
  }

  private static void checkJar(Path file, String uri) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new FileNotFoundException("jar " + uri + " not found (" + file + ")");
    }
    try (JarFile jar = new JarFile(file.toFile())) {
      jar.size();
    } catch (IOException e) {
      throw new IOException("not a jar: " + uri + " (" + e.getMessage() + ")", e);
    }
  }

  /** Whether Spark's jar list has a jar served under this file name. */
  private static boolean isServed(SparkContext sc, String name) {
    String encoded = "/" + Utils.encodeFileNameToURIRawPath(name);
    scala.collection.Iterator<String> it = sc.listJars().iterator();
    while (it.hasNext()) {
      String key = it.next();
      if (key.endsWith(encoded) || key.endsWith("/" + name)) {
        return true;
      }
    }
    return false;
  }

  private static Path copyWithOwnName(Path file, long sessionId) throws IOException {
    String name = file.getFileName().toString();
    int dot = name.lastIndexOf('.');
    String stem = dot > 0 ? name.substring(0, dot) : name;
    String ext = dot > 0 ? name.substring(dot) : "";
    Path dir = Files.createTempDirectory("hearth-jar-s" + sessionId + "-");
    dir.toFile().deleteOnExit();
    Path copy = dir.resolve(stem + "-hearth-s" + sessionId + "-" + kCopies.incrementAndGet() + ext);
    Files.copy(file, copy, StandardCopyOption.REPLACE_EXISTING);
    copy.toFile().deleteOnExit();
    return copy;
  }
}
