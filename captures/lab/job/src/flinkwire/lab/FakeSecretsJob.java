package flinkwire.lab;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

import java.util.Map;

/**
 * Lab job for flinkwire captures. Every value in here is FAKE: invented names,
 * emails at example.com/.org/.net, public test card numbers (Luhn-valid, never
 * issued to anyone), made-up passwords and a made-up API token.
 *
 * Pipeline: sequence source (parallelism 2) -> map to a text record (throttled)
 * -> keyBy(account) -> keep the last record per key in keyed state (so checkpoints
 * carry state) -> discarding sink. With one slot per TaskManager, about half the
 * records cross the Netty data plane between the two TaskManagers.
 *
 * Compiles unchanged against flink-dist 1.20.x and 2.3.0.
 */
public class FakeSecretsJob {

    static final String[] NAMES = {
        "Alice Fakeperson", "Bob Examplesson", "Carol Testington", "Dave Placeholder"
    };
    static final String[] EMAILS = {
        "alice.fakeperson@example.com", "bob.examplesson@example.org",
        "carol.testington@example.net", "dave.placeholder@example.com"
    };
    static final String[] CARDS = {
        "4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"
    };
    static final String[] PASSWORDS = {
        "password=hunter2-fake", "password=Tr0ub4dor-fake", "password=correcthorse-fake",
        "password=letmein-fake"
    };
    static final String TOKEN = "tok_live_fake_4eC39HqLyjWDarjtT1zdp7dc";

    public static void main(String[] args) throws Exception {
        // --key value pairs become the global job parameters (a Configuration).
        Configuration params = new Configuration();
        for (int i = 0; i + 1 < args.length; i += 2) {
            String k = args[i].startsWith("--") ? args[i].substring(2) : args[i];
            params.setString(k, args[i + 1]);
        }
        Map<String, String> m = params.toMap();
        long delayMs = Long.parseLong(m.getOrDefault("records.delay-ms", "100"));
        long checkpointMs = Long.parseLong(m.getOrDefault("checkpoint.interval-ms", "5000"));

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.getConfig().setGlobalJobParameters(params);
        env.enableCheckpointing(checkpointMs);
        env.setParallelism(2);

        env.fromSequence(0, Long.MAX_VALUE)
                .name("fake-customer-sequence")
                .map(new MakeRecord(delayMs))
                .name("make-fake-record")
                .keyBy(new AccountKey())
                .process(new RememberLast())
                .name("remember-last-per-account")
                .sinkTo(new DiscardingSink<>())
                .name("discard");

        env.execute("flinkwire-lab-fake-secrets");
    }

    /** Turns a sequence number into a record full of fake sensitive values. */
    public static class MakeRecord implements MapFunction<Long, String> {
        private final long delayMs;

        public MakeRecord(long delayMs) {
            this.delayMs = delayMs;
        }

        @Override
        public String map(Long seq) throws Exception {
            if (delayMs > 0) {
                Thread.sleep(delayMs);
            }
            int c = (int) (seq % NAMES.length);
            return "acct=" + (seq % 64)
                    + ";name=" + NAMES[c]
                    + ";email=" + EMAILS[c]
                    + ";card=" + CARDS[c]
                    + ";" + PASSWORDS[c]
                    + ";token=" + TOKEN
                    + ";seq=" + seq;
        }
    }

    public static class AccountKey implements KeySelector<String, String> {
        @Override
        public String getKey(String record) {
            return record.substring(0, record.indexOf(';'));
        }
    }

    /** Keeps the last record per account in keyed state and forwards it. */
    public static class RememberLast extends KeyedProcessFunction<String, String, String> {
        private transient ValueState<String> last;

        @Override
        public void processElement(String value, Context ctx, Collector<String> out)
                throws Exception {
            if (last == null) {
                last = getRuntimeContext().getState(
                        new ValueStateDescriptor<>("last-record", String.class));
            }
            last.update(value);
            out.collect(value);
        }
    }
}
