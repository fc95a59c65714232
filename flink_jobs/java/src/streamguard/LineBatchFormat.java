package streamguard;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.core.fs.FSDataInputStream;

/**
 * Reads a text file as records of up to {@code maxLines} lines each, joined by '\n'.
 *
 * <p>Like Flink's {@code TextLineInputFormat}, but one record carries a block of lines, so a PyFlink job
 * pays the Java-to-Python hand-over (serialization, bundle bookkeeping) once per block instead of once per
 * line. Blocks are cut by line count only, so they are the same on every read of a file: a restore skips
 * the records already emitted (the file source's checkpointed record count) and resumes at the same line.
 */
public final class LineBatchFormat extends SimpleStreamFormat<String> {
    private static final long serialVersionUID = 1L;

    private final int maxLines;

    public LineBatchFormat(int maxLines) {
        if (maxLines < 1) {
            throw new IllegalArgumentException("maxLines must be >= 1, got " + maxLines);
        }
        this.maxLines = maxLines;
    }

    @Override
    public Reader<String> createReader(Configuration config, FSDataInputStream stream) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8));
        return new Reader<String>() {
            @Override
            public String read() throws IOException {
                String line = in.readLine();
                if (line == null) {
                    return null;
                }
                StringBuilder block = new StringBuilder(line);
                for (int n = 1; n < maxLines && (line = in.readLine()) != null; n++) {
                    block.append('\n').append(line);
                }
                return block.toString();
            }

            @Override
            public void close() throws IOException {
                in.close();
            }
        };
    }

    @Override
    public TypeInformation<String> getProducedType() {
        return Types.STRING;
    }
}
