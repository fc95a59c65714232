package streamguard;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.Optional;
import java.util.PriorityQueue;

import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.assigners.FileSplitAssigner;

/**
 * Hands out pending file splits in path order (then offset), ignoring host locality.
 *
 * <p>Flink's default assigners pick by locality counts or take the newest split first, so files that
 * queue up while a job is behind or down are read in no defined order. The landing writers name files
 * so that path order is publication order; reading them in that order keeps each series' rows in time
 * order. The pending splits are part of the enumerator's checkpoint ({@link #remainingSplits()}), so
 * the order also holds after a restore from a checkpoint or savepoint.
 */
public final class OrderedSplitAssigner implements FileSplitAssigner {

    static final Comparator<FileSourceSplit> PATH_ORDER =
            Comparator.comparing((FileSourceSplit s) -> s.path().toString())
                    .thenComparingLong(FileSourceSplit::offset)
                    .thenComparing(FileSourceSplit::splitId);

    private final PriorityQueue<FileSourceSplit> pending = new PriorityQueue<>(PATH_ORDER);

    public OrderedSplitAssigner(Collection<FileSourceSplit> initialSplits) {
        pending.addAll(initialSplits);
    }

    @Override
    public Optional<FileSourceSplit> getNext(String hostname) {
        return Optional.ofNullable(pending.poll());
    }

    @Override
    public void addSplits(Collection<FileSourceSplit> splits) {
        pending.addAll(splits);
    }

    @Override
    public Collection<FileSourceSplit> remainingSplits() {
        ArrayList<FileSourceSplit> out = new ArrayList<>(pending);
        out.sort(PATH_ORDER);
        return out;
    }

    @Override
    public String toString() {
        return "OrderedSplitAssigner{pending=" + pending.size() + "}";
    }

    /** The serializable factory that FileSource.FileSourceBuilder#setSplitAssigner takes. */
    public static final class Provider implements FileSplitAssigner.Provider, Serializable {
        private static final long serialVersionUID = 1L;

        @Override
        public FileSplitAssigner create(Collection<FileSourceSplit> initialSplits) {
            return new OrderedSplitAssigner(initialSplits);
        }
    }
}
