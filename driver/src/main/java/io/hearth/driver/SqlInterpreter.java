package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.LocalDate;
import java.util.Base64;
import java.util.List;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * The sql kind: spark.sql(code) in the session's SparkSession; the result is Livy's
 * application/json table {"schema":…,"data":[[…],…]} with at most kMaxRows rows.
 */
final class SqlInterpreter implements Interpreter {
  static final int kMaxRows = 1000;
  private static final JsonNodeFactory kNodes = JsonNodeFactory.instance;

  private final SparkSession spark;
  private final String pool;

  SqlInterpreter(SparkSession spark, String pool) {
    this.spark = spark;
    this.pool = pool;
  }

  @Override
  public ObjectNode execute(long statementId, String jobGroup, String code) {
    SparkContext sc = spark.sparkContext();
    // Local properties belong to this (the session's) thread, so they tag only our jobs.
    sc.setJobGroup(jobGroup, "Hearth statement " + jobGroup, true);
    sc.setLocalProperty("spark.scheduler.pool", pool);
    SparkSession.setActiveSession(spark);
    try {
      Dataset<Row> df = spark.sql(code);
      ObjectNode table = kNodes.objectNode();
      table.set("schema", Codec.mapper().readTree(df.schema().json()));
      ArrayNode data = table.putArray("data");
      for (Row row : df.takeAsList(kMaxRows)) {
        data.add(rowToJson(row));
      }
      return Outputs.ok(statementId, "application/json", table);
    } catch (Throwable t) {
      return Outputs.error(statementId, t);
    } finally {
      sc.clearJobGroup();
    }
  }

  @Override
  public void close() {}

  static ArrayNode rowToJson(Row row) {
    ArrayNode out = kNodes.arrayNode();
    for (int i = 0; i < row.length(); i++) {
      out.add(toJson(row.get(i)));
    }
    return out;
  }

  /** A Spark SQL value as JSON, best effort: unknown types become their toString(). */
  static JsonNode toJson(Object v) {
    if (v == null) {
      return kNodes.nullNode();
    } else if (v instanceof String s) {
      return kNodes.textNode(s);
    } else if (v instanceof Boolean b) {
      return kNodes.booleanNode(b);
    } else if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
      return kNodes.numberNode(((Number) v).longValue());
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      // JSON has no NaN or Infinity.
      return Double.isFinite(d) ? kNodes.numberNode(d) : kNodes.textNode(Double.toString(d));
    } else if (v instanceof BigDecimal d) {
      return kNodes.numberNode(d);
    } else if (v instanceof BigInteger d) {
      return kNodes.numberNode(d);
    } else if (v instanceof java.sql.Date || v instanceof LocalDate) {
      return kNodes.textNode(v.toString()); // yyyy-MM-dd
    } else if (v instanceof byte[] bytes) {
      return kNodes.textNode(Base64.getEncoder().encodeToString(bytes));
    } else if (v instanceof Row r) {
      return rowToJson(r);
    } else if (v instanceof scala.collection.Map<?, ?> m) {
      ObjectNode out = kNodes.objectNode();
      scala.collection.Iterator<? extends scala.Tuple2<?, ?>> it = m.iterator();
      while (it.hasNext()) {
        scala.Tuple2<?, ?> kv = it.next();
        out.set(String.valueOf(kv._1()), toJson(kv._2()));
      }
      return out;
    } else if (v instanceof scala.collection.Iterable<?> seq) {
      ArrayNode out = kNodes.arrayNode();
      scala.collection.Iterator<?> it = seq.iterator();
      while (it.hasNext()) {
        out.add(toJson(it.next()));
      }
      return out;
    } else if (v instanceof List<?> list) {
      ArrayNode out = kNodes.arrayNode();
      list.forEach(item -> out.add(toJson(item)));
      return out;
    }
    return kNodes.textNode(v.toString()); // timestamps, intervals, variants, …
  }
}
