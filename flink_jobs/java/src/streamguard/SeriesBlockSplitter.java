package streamguard;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.json.JsonMapper;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Splits a source record (one landing line, or a block of lines joined by '\n') into one
 * {@code Row(series id, lines)} per series, each series' lines in the order read.
 *
 * <p>The Java twin of {@code flink_jobs/streaming/blocks.py:split_by_series}: running it next to the
 * source keeps one Java-to-Python hand-over per block (into the keyed scoring operator) instead of two.
 * The series id rule is {@code records.py:series_key}: the first CSV field, stripped; for a JSON line
 * its {@code series_id} / {@code machine_id} / {@code sensor_id}; "" for a line that cannot be keyed
 * (the keyed operator dead-letters it, naming the problem).
 */
public final class SeriesBlockSplitter implements FlatMapFunction<String, Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;
    private static final String[] ID_FIELDS = {"series_id", "machine_id", "sensor_id"};
    private static final String[] TS_FIELDS = {"timestamp", "ts"};
    private transient ObjectMapper json;

    @Override
    public void flatMap(String record, Collector<Row> out) {
        if (record.indexOf('\n') < 0) {
            out.collect(Row.of(seriesKey(record), record));
            return;
        }
        Map<String, StringBuilder> groups = new LinkedHashMap<>();
        for (String line : record.split("\n", -1)) {
            String key = seriesKey(line);
            StringBuilder lines = groups.get(key);
            if (lines == null) {
                groups.put(key, new StringBuilder(line));
            } else {
                lines.append('\n').append(line);
            }
        }
        for (Map.Entry<String, StringBuilder> e : groups.entrySet()) {
            out.collect(Row.of(e.getKey(), e.getValue().toString()));
        }
    }

    public String seriesKey(String line) {
        String head = stripLeading(line);
        if (head.startsWith("{")) {
            return jsonKey(line);
        }
        int comma = line.indexOf(',');
        return strip(comma < 0 ? line : line.substring(0, comma));
    }

    private String jsonKey(String line) {
        if (json == null) {
            // NaN / Infinity parse as in Python's json module (the row is then dead-lettered 'nan_inf')
            json = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
        }
        JsonNode obj;
        try {
            obj = json.readTree(line);
        } catch (Exception e) {
            return "";
        }
        if (obj == null || !obj.isObject()) {
            return "";
        }
        JsonNode sid = first(obj, ID_FIELDS);
        JsonNode ts = first(obj, TS_FIELDS);
        if (sid == null || sid.isNull() || ts == null || ts.isNull()) {
            return "";
        }
        if (obj.has("values") && !obj.get("values").isArray()) {
            return "";
        }
        if (sid.isTextual() || sid.isNumber()) {
            return sid.asText();
        }
        if (sid.isBoolean()) {
            return sid.asBoolean() ? "True" : "False"; // as Python's str() gives it
        }
        return "";
    }

    private static JsonNode first(JsonNode obj, String[] names) {
        for (String name : names) {
            if (obj.has(name)) {
                return obj.get(name);
            }
        }
        return null;
    }

    private static boolean space(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    private static String stripLeading(String s) {
        int i = 0;
        while (i < s.length() && space(s.charAt(i))) {
            i++;
        }
        return s.substring(i);
    }

    private static String strip(String s) {
        int end = s.length();
        while (end > 0 && space(s.charAt(end - 1))) {
            end--;
        }
        return stripLeading(s.substring(0, end));
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW(Types.STRING, Types.STRING);
    }
}
