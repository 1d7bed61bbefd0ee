package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/** Livy's statement output objects (livy-api.md section 2). */
final class Outputs {
  private static final JsonNodeFactory kNodes = JsonNodeFactory.instance;

  private Outputs() {}

  /** {"status":"ok","execution_count":N,"data":{mime: value}}. */
  static ObjectNode ok(long executionCount, String mime, JsonNode value) {
    ObjectNode out = kNodes.objectNode();
    out.put("status", "ok").put("execution_count", executionCount);
    out.putObject("data").set(mime, value);
    return out;
  }

  /** {"status":"error","execution_count":N,"ename":…,"evalue":…,"traceback":[…]}. */
  static ObjectNode error(long executionCount, String ename, String evalue, List<String> traceback) {
    ObjectNode out = kNodes.objectNode();
    out.put("status", "error").put("execution_count", executionCount)
        .put("ename", ename).put("evalue", evalue == null ? "" : evalue);
    ArrayNode tb = out.putArray("traceback");
    traceback.forEach(tb::add);
    return out;
  }

  /** An error output for a Java exception, as Livy's SQL interpreter reports them. */
  static ObjectNode error(long executionCount, Throwable t) {
    List<String> frames = java.util.Arrays.stream(t.getStackTrace()).map(StackTraceElement::toString).toList();
    String message = t.getMessage() != null ? t.getMessage() : t.toString();
    return error(executionCount, "Error", message, frames);
  }
}
