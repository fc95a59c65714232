package streamguard;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

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
 *
 * <p>With {@code nValues > 0} (the parsing splitter) each series' block is parsed here and sent as bytes
 * ({@link ParsedBlock}): the lines that take {@code records.py:_parse_fast}'s common case (CSV, a 13-digit
 * epoch-ms timestamp, plain finite numbers, an accepted series id) as timestamps and doubles, every other
 * line as its raw text with its place in the block, for Python's full parser to accept or dead-letter. So
 * Python never splits or converts the common line, and what this side does not take is judged as before.
 *
 * <p>Covariate routes ({@link #withCovariates}, none by default: the output is then unchanged): a block of a
 * covariate sensor {@code <site>/<covariate>} is also sent, as is, to each dependent sensor {@code
 * <site>/<dependent>}, before the record's other blocks, so a dependent row finds the covariate readings of
 * its own record. The copy keeps its lines' own series id: the keyed operator tells it by that. The Python
 * twin is {@code blocks.py:with_covariate_copies}.
 */
public final class SeriesBlockSplitter implements FlatMapFunction<String, Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;
    private static final String[] ID_FIELDS = {"series_id", "machine_id", "sensor_id"};
    private static final String[] TS_FIELDS = {"timestamp", "ts"};
    private transient ObjectMapper json;

    private final int nValues; // 0: blocks of lines (strings); > 0: parsed blocks (bytes)
    private final double[] nodata;
    private final String[] allowed; // accepted series ids; empty: any valid id
    private transient Set<String> allowedSet;
    private String[] covariateVars = new String[0]; // route i: blocks of <site>/covariateVars[i] ...
    private String[] dependentVars = new String[0]; // ... also go to <site>/dependentVars[i]

    public SeriesBlockSplitter() {
        this(0, new double[0], new String[0]);
    }

    public SeriesBlockSplitter(int nValues, double[] nodata, String[] allowed) {
        this.nValues = nValues;
        this.nodata = nodata.clone();
        this.allowed = allowed.clone();
    }

    /** Adds covariate routes (pairs of variable names); returns this splitter. */
    public SeriesBlockSplitter withCovariates(String[] covariates, String[] dependents) {
        if (covariates.length != dependents.length) {
            throw new IllegalArgumentException("one dependent variable per covariate variable");
        }
        this.covariateVars = covariates.clone();
        this.dependentVars = dependents.clone();
        return this;
    }

    @Override
    public void flatMap(String record, Collector<Row> out) {
        if (covariateVars.length > 0) {
            routed(record, out);
        } else {
            split(record, out);
        }
    }

    private void split(String record, Collector<Row> out) {
        if (nValues > 0) {
            parsed(record, out);
            return;
        }
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

    /** Test hook: the {@code [series id, lines]} blocks sent for {@code record} (blocks of lines, not parsed). */
    public List<List<String>> blocksOf(String record) {
        List<List<String>> got = new ArrayList<>();
        Collector<Row> keep = new Collector<Row>() {
            @Override
            public void collect(Row row) {
                got.add(Arrays.asList((String) row.getField(0), (String) row.getField(1)));
            }

            @Override
            public void close() {
            }
        };
        flatMap(record, keep);
        return got;
    }

    /** The blocks of {@code record} (the unrouted path), covariate copies first. */
    private void routed(String record, Collector<Row> out) {
        List<Row> blocks = new ArrayList<>();
        Collector<Row> keep = new Collector<Row>() {
            @Override
            public void collect(Row row) {
                blocks.add(row);
            }

            @Override
            public void close() {
            }
        };
        split(record, keep);
        for (Row block : blocks) {
            String key = (String) block.getField(0);
            int slash = key.lastIndexOf('/');
            if (slash <= 0) {
                continue;
            }
            String variable = key.substring(slash + 1);
            for (int i = 0; i < covariateVars.length; i++) {
                if (covariateVars[i].equals(variable)) {
                    out.collect(Row.of(key.substring(0, slash + 1) + dependentVars[i], block.getField(1)));
                }
            }
        }
        for (Row block : blocks) {
            out.collect(block);
        }
    }

    private void parsed(String record, Collector<Row> out) {
        Map<String, ParsedBlock> groups = new LinkedHashMap<>();
        for (String line : record.split("\n", -1)) {
            String key = seriesKey(line);
            ParsedBlock block = groups.get(key);
            if (block == null) {
                block = new ParsedBlock(nValues);
                groups.put(key, block);
            }
            if (!block.addFast(line, key, this)) {
                block.addRaw(line);
            }
        }
        for (Map.Entry<String, ParsedBlock> e : groups.entrySet()) {
            out.collect(Row.of(e.getKey(), e.getValue().toBytes()));
        }
    }

    /** Test hook: the bytes the parsing splitter sends for one series' lines ('\n'-joined). */
    public byte[] encode(String lines) {
        ParsedBlock block = new ParsedBlock(nValues);
        for (String line : lines.split("\n", -1)) {
            if (!block.addFast(line, seriesKey(line), this)) {
                block.addRaw(line);
            }
        }
        return block.toBytes();
    }

    boolean accepts(String sid) {
        if (allowed.length == 0) {
            return true;
        }
        if (allowedSet == null) {
            allowedSet = new HashSet<>(Arrays.asList(allowed));
        }
        return allowedSet.contains(sid);
    }

    boolean isNodata(double v) {
        for (double code : nodata) {
            if (v == code) {
                return true;
            }
        }
        return false;
    }

    /**
     * One series' parsed lines. Layout (little-endian): int32 fast rows n, int32 raw lines m, int64 wall-clock
     * ms at which the block was cut (the rows' parse time: alerts' latency counts from it); m times (int32 place
     * in the block, int32 byte length, UTF-8 bytes); zero padding to a multiple of 8; n int64 timestamps;
     * n * nValues float64 values, row by row.
     */
    static final class ParsedBlock {
        private final int nValues;
        private long[] ts = new long[64];
        private double[] values;
        private int n;
        private int seen;
        private final List<int[]> rawPlaces = new ArrayList<>();
        private final List<byte[]> raw = new ArrayList<>();
        private int rawBytes;

        ParsedBlock(int nValues) {
            this.nValues = nValues;
            this.values = new double[64 * nValues];
        }

        void addRaw(String line) {
            byte[] b = line.getBytes(StandardCharsets.UTF_8);
            rawPlaces.add(new int[] {seen++, b.length});
            raw.add(b);
            rawBytes += 8 + b.length;
        }

        /** The common case of {@code records.py:_parse_fast}, stricter: false leaves the line to Python. */
        boolean addFast(String line, String key, SeriesBlockSplitter cfg) {
            int end = line.length();
            while (end > 0 && (line.charAt(end - 1) == '\r' || line.charAt(end - 1) == '\n')) {
                end--;
            }
            if (end == 0 || line.charAt(0) == '{' || !validId(key) || !cfg.accepts(key)) {
                return false;
            }
            // the fields are scanned in a Latin-1 copy of the line: array reads instead of String.charAt, which
            // the embedded mini-cluster's C1-only JIT leaves as calls (the whole split of a 38-value line: 4.9 ->
            // 4.2 us). A char above 0xFF becomes '?', which no plain field holds: such a line is left to Python
            byte[] b = line.getBytes(StandardCharsets.ISO_8859_1);
            int first = indexOf(b, (byte) ',', 0, end);
            int second = first < 0 ? -1 : indexOf(b, (byte) ',', first + 1, end);
            if (second < 0) {
                return false;
            }
            if (first != key.length() || !line.startsWith(key) || second - first - 1 != 13) {
                return false; // no blanks around the id (validId has none), exactly 13 timestamp digits
            }
            long stamp = 0;
            for (int i = first + 1; i < second; i++) {
                int c = b[i];
                if (c < '0' || c > '9') {
                    return false;
                }
                stamp = stamp * 10 + (c - '0');
            }
            if (n == ts.length) {
                ts = Arrays.copyOf(ts, 2 * n);
                values = Arrays.copyOf(values, 2 * n * nValues);
            }
            int base = n * nValues;
            int start = second + 1;
            for (int k = 0; k < nValues; k++) {
                int stop = k == nValues - 1 ? end : indexOf(b, (byte) ',', start, end); // a surplus ',' is not plain
                if (stop < 0) {
                    return false;
                }
                double v = plainValue(b, start, stop);
                if (Double.isInfinite(v) || Double.isNaN(v) || cfg.isNodata(v)) {
                    return false;
                }
                values[base + k] = v;
                start = stop + 1;
            }
            ts[n++] = stamp;
            seen++;
            return true;
        }

        byte[] toBytes() {
            int head = 16 + rawBytes;
            int pad = (8 - head % 8) % 8;
            ByteBuffer buf = ByteBuffer.allocate(head + pad + 8 * n + 8 * n * nValues).order(ByteOrder.LITTLE_ENDIAN);
            buf.putInt(n).putInt(raw.size()).putLong(System.currentTimeMillis());
            for (int i = 0; i < raw.size(); i++) {
                buf.putInt(rawPlaces.get(i)[0]).putInt(rawPlaces.get(i)[1]).put(raw.get(i));
            }
            buf.position(head + pad);
            for (int i = 0; i < n; i++) {
                buf.putLong(ts[i]);
            }
            for (int i = 0; i < n * nValues; i++) {
                buf.putDouble(values[i]);
            }
            return buf.array();
        }
    }

    /** {@code records.py:_SERIES}: a letter or digit, then up to 127 of letters, digits, '_', '.', '-', '/'. */
    static boolean validId(String s) {
        if (s.isEmpty() || s.length() > 128 || !asciiAlnum(s.charAt(0))) {
            return false;
        }
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!asciiAlnum(c) && c != '_' && c != '.' && c != '-' && c != '/') {
                return false;
            }
        }
        return true;
    }

    private static boolean asciiAlnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }

    private static final double[] POW10 = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
        1e19, 1e20, 1e21, 1e22};

    /**
     * The value of a plain number {@code [+-]?(digits[.digits?] | .digits)([eE][+-]?d{1,2})?} of at most 15
     * mantissa digits, or NaN when {@code s[from, to)} is not one (it is then left to Python). Such a
     * mantissa is an exact double, and so is 10^k for k <= 22: one IEEE division or multiplication then
     * rounds the exact decimal value correctly, as Python's float() does (other scales use parseDouble).
     */
    static double plainValue(byte[] s, int from, int to) {
        int i = skipSign(s, from, to);
        boolean negative = i > from && s[from] == '-';
        long mantissa = 0;
        int digits = 0;
        int fraction = 0;
        for (boolean point = false; i < to; i++) {
            int c = s[i];
            if (c >= '0' && c <= '9') {
                mantissa = mantissa * 10 + (c - '0');
                digits++;
                fraction += point ? 1 : 0;
            } else if (c == '.' && !point) {
                point = true;
            } else {
                break;
            }
        }
        if (digits == 0 || digits > 15) {
            return Double.NaN;
        }
        int exponent = 0;
        if (i < to && (s[i] == 'e' || s[i] == 'E')) {
            int expStart = skipSign(s, i + 1, to);
            i = digitsEnd(s, expStart, to);
            if (i == expStart || i - expStart > 2) {
                return Double.NaN;
            }
            for (int j = expStart; j < i; j++) {
                exponent = exponent * 10 + (s[j] - '0');
            }
            exponent = s[expStart - 1] == '-' ? -exponent : exponent;
        }
        if (i != to) {
            return Double.NaN;
        }
        int scale = fraction - exponent; // value = mantissa / 10^scale
        double v;
        if (scale >= 0 && scale <= 22) {
            v = mantissa / POW10[scale];
        } else if (scale < 0 && scale >= -22) {
            v = mantissa * POW10[-scale];
        } else {
            return Double.parseDouble(new String(s, from, to - from, StandardCharsets.ISO_8859_1));
        }
        return negative ? -v : v;
    }

    private static int indexOf(byte[] s, byte c, int from, int to) {
        for (int i = from; i < to; i++) {
            if (s[i] == c) {
                return i;
            }
        }
        return -1;
    }

    private static int skipSign(byte[] s, int i, int to) {
        return i < to && (s[i] == '+' || s[i] == '-') ? i + 1 : i;
    }

    private static int digitsEnd(byte[] s, int i, int to) {
        while (i < to && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        return i;
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
        return nValues > 0 ? Types.ROW(Types.STRING, Types.PRIMITIVE_ARRAY(Types.BYTE)) : Types.ROW(Types.STRING, Types.STRING);
    }
}
