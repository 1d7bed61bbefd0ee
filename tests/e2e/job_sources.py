"""Job classes for the job API's end-to-end tests (tests/e2e/test_jobs.py), as Java source, and
the jars built from them at test time with the JDK on PATH, compiled against Spark's jars (from
the pyspark package) and the job interface jar hearth-job-api.jar (built next to the agent jar).

Package e2ejobs (JOBS_SOURCES) goes into one jar that the tests add to their session; package
e2efield (FIELD_SOURCES) into another, handed over by the "jar" field of a start request only.
"""
import glob
import importlib.util
import os
import subprocess

from hearth_harness import HEARTH_AGENT_JAR

_IMPORTS = """\
import io.hearth.job.HearthJob;
import io.hearth.job.JobContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;
import org.apache.spark.sql.SparkSession;
"""

JOBS_SOURCES = {
    # An ordinary Spark application: main(String[]) and the builder's getOrCreate(). The view it
    # registers is visible to the session's statements only if it got the session's SparkSession.
    "MakeView": """
public class MakeView {
  public static void main(String[] args) {
    SparkSession spark = SparkSession.builder().getOrCreate();
    spark.range(5).createOrReplaceTempView("job_made_" + args[0]);
  }
}
""",
    # A HearthJob with a result built from Spark work (SQL, and an RDD whose reduce function is a
    # lambda of this jar, so the executors must load the jar's classes) and from the context.
    "Count": """
public class Count implements HearthJob<Map<String, Object>> {
  @Override
  public Map<String, Object> call(JobContext ctx) {
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("count", ctx.spark().range(100).count());
    result.put("sum", ctx.sc().parallelize(Arrays.asList(1, 2, 3, 4), 2).reduce((a, b) -> a + b));
    result.put("args", ctx.args());
    result.put("conf", ctx.conf());
    result.put("jobId", ctx.jobId());
    result.put("sessionId", ctx.sessionId());
    return result;
  }
}
""",
    "Fails": """
public class Fails implements HearthJob<String> {
  @Override
  public String call(JobContext ctx) {
    throw new IllegalStateException("boom");
  }
}
""",
    "FailsInMain": """
public class FailsInMain {
  public static void main(String[] args) {
    throw new IllegalStateException("boom in main");
  }
}
""",
    # Runs one Spark task that sleeps for a minute: only cancelling its Spark job ends it early.
    "SleepyTasks": """
public class SleepyTasks implements HearthJob<Long> {
  @Override
  public Long call(JobContext ctx) {
    return ctx.sc().parallelize(Arrays.asList(1), 1).map(x -> {
      Thread.sleep(60_000);
      return x;
    }).count();
  }
}
""",
    # Ignores interrupts and stops only when isCancelled() turns true (or after ten minutes), then
    # returns normally: the job must still end cancelled, without a result.
    "Watcher": """
public class Watcher implements HearthJob<String> {
  @Override
  public String call(JobContext ctx) {
    long deadline = System.currentTimeMillis() + 600_000;
    while (!ctx.isCancelled() && System.currentTimeMillis() < deadline) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        // deliberately ignored: this job watches isCancelled()
      }
    }
    return ctx.isCancelled() ? "stopped by the cancel" : "never cancelled";
  }
}
""",
    # Waits until the file args[0] exists (the test opens the gate), then counts spark.range(args[1])
    # and returns the file's text, the count and its own job id.
    "Gate": """
public class Gate implements HearthJob<Map<String, Object>> {
  @Override
  public Map<String, Object> call(JobContext ctx) throws Exception {
    Path gate = Paths.get(ctx.args().get(0));
    long deadline = System.currentTimeMillis() + 300_000;
    while (!Files.exists(gate)) {
      if (System.currentTimeMillis() > deadline) {
        throw new TimeoutException("the gate " + gate + " was never opened");
      }
      Thread.sleep(20);
    }
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("gate", Files.readString(gate));
    result.put("count", ctx.spark().range(Long.parseLong(ctx.args().get(1))).count());
    result.put("jobId", ctx.jobId());
    return result;
  }
}
""",
    # Neither a HearthJob nor a class with main(String[]).
    "Neither": """
public class Neither {
  public String hello() {
    return "hello";
  }
}
""",
    "NoConstructor": """
public class NoConstructor implements HearthJob<String> {
  private final String name;

  public NoConstructor(String name) {
    this.name = name;
  }

  @Override
  public String call(JobContext ctx) {
    return name;
  }
}
""",
    # A result Jackson cannot serialise (a bean without properties).
    "Opaque": """
public class Opaque implements HearthJob<Object> {
  @Override
  public Object call(JobContext ctx) {
    return new Object();
  }
}
""",
}

FIELD_SOURCES = {
    "ViaField": """
public class ViaField implements HearthJob<String> {
  @Override
  public String call(JobContext ctx) {
    return "via the jar field: " + String.join(",", ctx.args());
  }
}
""",
}


def job_api_jar():
    """build/lib/hearth-job-api.jar of the build under test: next to the agent jar."""
    assert HEARTH_AGENT_JAR, "HEARTH_AGENT_JAR is not set (run the tests through ctest)"
    jar = os.path.join(os.path.dirname(HEARTH_AGENT_JAR), "hearth-job-api.jar")
    assert os.path.isfile(jar), f"no job interface jar next to the agent jar: {jar}"
    return jar


def spark_jars():
    """The directory of Spark's jars shipped in the pyspark package."""
    spec = importlib.util.find_spec("pyspark")
    assert spec is not None and spec.submodule_search_locations, "pyspark is not installed"
    jars = os.path.join(list(spec.submodule_search_locations)[0], "jars")
    assert glob.glob(os.path.join(jars, "spark-sql_*.jar")), f"no Spark jars in {jars}"
    return jars


def build_job_jar(directory, package, sources, jar_name):
    """directory/jar_name holding the classes of `sources` ({class name: body}) in `package`,
    compiled for Java 17 against Spark and the job interface (which the jar does not bundle)."""
    src = os.path.join(directory, "src", package)
    classes = os.path.join(directory, "classes")
    os.makedirs(src, exist_ok=True)
    os.makedirs(classes, exist_ok=True)
    files = []
    for name, body in sources.items():
        path = os.path.join(src, f"{name}.java")
        with open(path, "w") as f:
            f.write(f"package {package};\n\n{_IMPORTS}{body}")
        files.append(path)
    classpath = os.pathsep.join([job_api_jar(), os.path.join(spark_jars(), "*")])
    subprocess.run(["javac", "--release", "17", "-Xlint:-options", "-cp", classpath, "-d", classes, *files],
                   check=True)
    jar = os.path.join(directory, jar_name)
    subprocess.run(["jar", "cf", jar, "-C", classes, package], check=True)
    return jar
