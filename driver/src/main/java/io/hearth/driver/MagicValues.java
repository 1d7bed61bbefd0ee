package io.hearth.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * The values of the Scala magics ({@code %json v}, {@code %table v}; livy-api.md section 2) as
 * JSON, in the manner of Livy's json4s {@code Extraction.decompose}: Maps (Scala or Java) as
 * objects with their keys as strings, collections, arrays and iterators as arrays, case classes
 * as objects of their fields, tuples as arrays (so that a table of tuples has columns "0", "1",
 * …), Options as their value or null, integral numbers as integers, BigDecimals as decimals, Spark
 * Rows with a schema as objects of their fields. A top-level RDD is its first 10 elements (as
 * Livy's {@code take(10)}), a top-level Dataset its first {@value #kMaxDatasetRows} rows (as
 * Rows, so with its schema's field names).
 */
final class MagicValues {
  static final int kRddRows = 10;
  static final int kMaxDatasetRows = 1000;
  private static final int kMaxDepth = 100;
  private static final JsonNodeFactory kNodes = JsonNodeFactory.instance;
  private static final Pattern kTupleClass = Pattern.compile("scala\\.Tuple\\d+(\\$.*)?");

  private MagicValues() {}

  /** A value that cannot be made JSON (too deep, or a conversion threw). */
  static final class NotConvertible extends Exception {
    NotConvertible(String message) {
      super(message);
    }
  }

  /** Table cells of one column with different types (Livy's TypesDoNotMatch). */
  static final class TypesDoNotMatch extends Exception {
    TypesDoNotMatch() {
      super("table rows have different types");
    }
  }

  /** An RDD's first rows, a Dataset's first rows as Rows, anything else itself. Runs Spark jobs. */
  static Object materialize(Object value) {
    if (value instanceof RDD<?> rdd) {
      return rdd.take(kRddRows);
    }
    if (value instanceof Dataset<?> ds) {
      return ds.toDF().take(kMaxDatasetRows);
    }
    return value;
  }

  static JsonNode toJson(Object value) throws NotConvertible {
    return toJson(value, 0);
  }

  private static JsonNode toJson(Object value, int depth) throws NotConvertible {
    if (depth > kMaxDepth) {
      throw new NotConvertible("value nested too deeply");
    }
    if (value == null || value instanceof scala.runtime.BoxedUnit || value == scala.None$.MODULE$) {
      return kNodes.nullNode();
    }
    if (value instanceof scala.Some<?> some) {
      return toJson(some.value(), depth + 1);
    }
    if (value instanceof CharSequence || value instanceof Character) {
      return kNodes.textNode(value.toString());
    }
    if (value instanceof Boolean b) {
      return kNodes.booleanNode(b);
    }
    if (value instanceof Byte || value instanceof Short || value instanceof Integer || value instanceof Long) {
      return kNodes.numberNode(((Number) value).longValue());
    }
    if (value instanceof BigInteger i) {
      return kNodes.numberNode(i);
    }
    if (value instanceof scala.math.BigInt i) {
      return kNodes.numberNode(i.bigInteger());
    }
    if (value instanceof Float || value instanceof Double) {
      double d = ((Number) value).doubleValue();
      return Double.isFinite(d) ? kNodes.numberNode(d) : kNodes.nullNode();
    }
    if (value instanceof BigDecimal d) {
      return kNodes.numberNode(d);
    }
    if (value instanceof scala.math.BigDecimal d) {
      return kNodes.numberNode(d.bigDecimal());
    }
    if (value instanceof Row row) {
      return rowToJson(row, depth);
    }
    if (value instanceof scala.collection.Map<?, ?> map) {
      ObjectNode out = kNodes.objectNode();
      scala.collection.Iterator<? extends scala.Tuple2<?, ?>> it = map.iterator();
      while (it.hasNext()) {
        scala.Tuple2<?, ?> entry = it.next();
        out.set(String.valueOf(entry._1()), toJson(entry._2(), depth + 1));
      }
      return out;
    }
    if (value instanceof Map<?, ?> map) {
      ObjectNode out = kNodes.objectNode();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        out.set(String.valueOf(entry.getKey()), toJson(entry.getValue(), depth + 1));
      }
      return out;
    }
    if (value instanceof scala.collection.IterableOnce<?> items) {
      ArrayNode out = kNodes.arrayNode();
      scala.collection.Iterator<?> it = items.iterator();
      while (it.hasNext()) {
        out.add(toJson(it.next(), depth + 1));
      }
      return out;
    }
    if (value instanceof Iterable<?> items) {
      ArrayNode out = kNodes.arrayNode();
      for (Object item : items) {
        out.add(toJson(item, depth + 1));
      }
      return out;
    }
    if (value instanceof Iterator<?> it) {
      ArrayNode out = kNodes.arrayNode();
      while (it.hasNext()) {
        out.add(toJson(it.next(), depth + 1));
      }
      return out;
    }
    if (value.getClass().isArray()) {
      ArrayNode out = kNodes.arrayNode();
      int n = Array.getLength(value);
      for (int i = 0; i < n; i++) {
        out.add(toJson(Array.get(value, i), depth + 1));
      }
      return out;
    }
    if (value instanceof scala.Product p && p.productArity() > 0) {
      if (kTupleClass.matcher(value.getClass().getName()).matches()) {
        ArrayNode out = kNodes.arrayNode();
        for (int i = 0; i < p.productArity(); i++) {
          out.add(toJson(p.productElement(i), depth + 1));
        }
        return out;
      }
      ObjectNode out = kNodes.objectNode();
      for (int i = 0; i < p.productArity(); i++) {
        out.set(p.productElementName(i), toJson(p.productElement(i), depth + 1));
      }
      return out;
    }
    if (value instanceof Enum<?> e) {
      return kNodes.textNode(e.name());
    }
    // Dates, times, case objects, nested RDDs and anything else: their text.
    return kNodes.textNode(value.toString());
  }

  private static JsonNode rowToJson(Row row, int depth) throws NotConvertible {
    StructType schema = row.schema();
    if (schema == null) {
      ArrayNode out = kNodes.arrayNode();
      for (int i = 0; i < row.length(); i++) {
        out.add(toJson(row.get(i), depth + 1));
      }
      return out;
    }
    ObjectNode out = kNodes.objectNode();
    String[] names = schema.fieldNames();
    for (int i = 0; i < row.length() && i < names.length; i++) {
      out.set(names[i], toJson(row.get(i), depth + 1));
    }
    return out;
  }

  /**
   * Livy's table of a JSON value: its elements as rows if it is an array, else itself as the one
   * row; a row that is an array gives columns "0", "1", …, an object its keys, anything else
   * column "0". Headers in order of first appearance, each with the type of its cells;
   * {@code {"headers":[{"name","type"}…],"data":[[…]…]}}, each data row aligned to the headers
   * (null where a row lacks a column). A column whose non-null cells differ in type, or an
   * array or object cell whose own elements differ in type, is TypesDoNotMatch.
   */
  static ObjectNode table(JsonNode value) throws TypesDoNotMatch {
    List<JsonNode> rows = new ArrayList<>();
    if (value.isArray()) {
      value.forEach(rows::add);
    } else {
      rows.add(value);
    }
    LinkedHashMap<String, String> headers = new LinkedHashMap<>();
    List<Map<String, JsonNode>> cells = new ArrayList<>();
    for (JsonNode row : rows) {
      LinkedHashMap<String, JsonNode> cols = new LinkedHashMap<>();
      if (row.isArray()) {
        for (int i = 0; i < row.size(); i++) {
          cols.put(Integer.toString(i), row.get(i));
        }
      } else if (row.isObject()) {
        row.properties().forEach(e -> cols.put(e.getKey(), e.getValue()));
      } else {
        cols.put("0", row);
      }
      for (Map.Entry<String, JsonNode> col : cols.entrySet()) {
        String type = tableType(col.getValue());
        String seen = headers.get(col.getKey());
        if (seen == null || seen.equals("NULL_TYPE")) {
          headers.put(col.getKey(), type);
        } else if (!type.equals("NULL_TYPE") && !type.equals(seen)) {
          throw new TypesDoNotMatch();
        }
      }
      cells.add(cols);
    }
    ObjectNode out = kNodes.objectNode();
    ArrayNode headerNodes = out.putArray("headers");
    headers.forEach((name, type) -> headerNodes.addObject().put("name", name).put("type", type));
    ArrayNode data = out.putArray("data");
    for (Map<String, JsonNode> cols : cells) {
      ArrayNode line = data.addArray();
      for (String name : headers.keySet()) {
        JsonNode cell = cols.get(name);
        line.add(cell == null ? kNodes.nullNode() : cell);
      }
    }
    return out;
  }

  private static String tableType(JsonNode value) throws TypesDoNotMatch {
    if (value == null || value.isNull() || value.isMissingNode()) {
      return "NULL_TYPE";
    }
    if (value.isBoolean()) {
      return "BOOLEAN_TYPE";
    }
    if (value.isTextual()) {
      return "STRING_TYPE";
    }
    if (value.isIntegralNumber()) {
      return "BIGINT_TYPE";
    }
    if (value.isBigDecimal()) {
      return "DECIMAL_TYPE";
    }
    if (value.isNumber()) {
      return "DOUBLE_TYPE";
    }
    if (value.isArray() || value.isObject()) {
      String first = null;
      for (JsonNode element : value) {
        String type = tableType(element);
        if (first == null) {
          first = type;
        } else if (!first.equals(type)) {
          throw new TypesDoNotMatch();
        }
      }
      return value.isArray() ? "ARRAY_TYPE" : "MAP_TYPE";
    }
    return "STRING_TYPE";
  }
}
